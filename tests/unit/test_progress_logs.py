"""ProgressBar (tqdm and plain counter) and configure_logging (console and JSON lines)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from vosweep import _log
from vosweep.errors import UsageError
from vosweep.outcomes import Part, ServiceOutcome, Status
from vosweep.progress import ProgressBar
from vosweep.result import Collector
from vosweep.services import Service


def part(index: int, status: Status, **fields: object) -> Part:
    service = Service.scs(f"http://127.0.0.1/scs/{index}")
    return Part(index, ServiceOutcome(service=service, status=status, **fields))  # type: ignore[arg-type]


STATUSES = [Status.OK, Status.ERROR, Status.OK, Status.TIMEOUT]


def test_plain_counter_counts_per_status_with_an_eta() -> None:
    out = io.StringIO()
    with ProgressBar(total=4, file=out, use_tqdm=False) as bar:
        bar(part(0, Status.OK))
        assert "1/4 services" in out.getvalue()
        assert "ETA" in out.getvalue()
        for i, status in enumerate(STATUSES[1:], 1):
            bar(part(i, status))
    assert not bar.uses_tqdm
    assert bar.counts == {"ok": 2, "error": 1, "timeout": 1}
    assert bar.done == 4
    final = out.getvalue().rstrip("\n").split("\r")[-1]
    assert "4/4 services" in final
    assert "error=1 ok=2 timeout=1" in final
    assert "ETA" not in final
    assert out.getvalue().endswith("\n")


def test_plain_counter_is_rate_limited() -> None:
    """A thousand fast services are not a thousand redraws."""
    out = io.StringIO()
    with ProgressBar(total=1000, file=out, use_tqdm=False) as bar:
        for i in range(1000):
            bar(part(i, Status.OK))
    assert out.getvalue().count("\r") < 50
    assert out.getvalue().rstrip("\n").split("\r")[-1].startswith("sweep: 1000/1000")


def test_unknown_total_has_no_eta() -> None:
    out = io.StringIO()
    with ProgressBar(file=out, use_tqdm=False) as bar:
        bar(part(0, Status.EMPTY))
    assert "1 services  empty=1" in out.getvalue()
    assert "ETA" not in out.getvalue()


def test_tqdm_bar_shows_counts_in_the_postfix() -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    with ProgressBar(total=4, file=out) as bar:
        for i, status in enumerate(STATUSES):
            bar(part(i, status))
    assert bar.uses_tqdm
    text = out.getvalue()
    assert "4/4" in text
    assert "error=1, ok=2, timeout=1" in text or "error=1 ok=2 timeout=1" in text


def test_disabled_bar_counts_silently_and_close_is_idempotent() -> None:
    out = io.StringIO()
    bar = ProgressBar(total=2, file=out, disable=True)
    bar(part(0, Status.OK))
    bar.close()
    bar.close()
    assert out.getvalue() == ""
    assert bar.counts == {"ok": 1}
    assert bar.postfix() == "ok=1"


@pytest.mark.parametrize("total", [-1, True])
def test_bad_total(total: int) -> None:
    with pytest.raises(UsageError, match="ProgressBar total"):
        ProgressBar(total=total)


# --- logging ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    if _log._opened is not None:
        _log._opened.close()
        _log._opened = None


def test_the_library_configures_nothing() -> None:
    """In a fresh interpreter: importing vosweep (and the CLI module) leaves structlog alone."""
    code = "import vosweep, vosweep.cli, structlog; print(structlog.is_configured())"
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_json_lines_hold_the_service_events_with_timings(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _log.configure_logging("json", stream=path)
    collector = Collector()
    collector.record(part(0, Status.OK, rows=5, attempts=1, elapsed=0.25))
    collector.record(
        part(1, Status.ERROR, attempts=3, elapsed=1.5, http_status=503, message="unavailable")
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == [_log.SERVICE_DONE] * 2
    ok, error = lines
    assert (ok["level"], ok["rows"], ok["attempts"], ok["elapsed"]) == ("info", 5, 1, 0.25)
    assert (error["level"], error["status"], error["attempts"]) == ("warning", "error", 3)
    assert (error["http_status"], error["message"]) == (503, "unavailable")
    assert all(line["timestamp"].endswith("Z") and "T" in line["timestamp"] for line in lines)


def test_console_lines_without_colours_off_a_terminal() -> None:
    out = io.StringIO()
    _log.configure_logging("console", level="info", stream=out)
    _log.get_logger().info(_log.FANOUT_DONE, services=3, rows=7)
    text = out.getvalue()
    assert _log.FANOUT_DONE in text
    assert "services=3" in text
    assert "\x1b[" not in text


def test_level_filters_events() -> None:
    out = io.StringIO()
    _log.configure_logging("json", level="warning", stream=out)
    _log.get_logger().info(_log.SERVICE_DONE, status="ok")
    _log.get_logger().warning(_log.SERVICE_DONE, status="error")
    _log.get_logger().debug(_log.FANOUT_STARTED)
    assert [json.loads(line)["status"] for line in out.getvalue().splitlines()] == ["error"]


def test_reconfiguring_closes_the_previous_file(tmp_path: Path) -> None:
    _log.configure_logging("json", stream=tmp_path / "a.jsonl")
    first = _log._opened
    assert first is not None
    _log.configure_logging("json", stream=tmp_path / "b.jsonl")
    assert first.closed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "xml"}, "log format must be 'console' or 'json', got 'xml'"),
        ({"level": "chatty"}, "log level must be one of debug, info"),
        ({"level": 1.5}, "log level must be a name or a number"),
        ({"stream": "/nonexistent-folder/x.log"}, "cannot open log file /nonexistent-folder"),
    ],
)
def test_bad_logging_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        _log.configure_logging(**kwargs)  # type: ignore[arg-type]
    assert not structlog.is_configured()
