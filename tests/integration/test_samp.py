"""SAMP hand-off against a real astropy SAMP hub on loopback (never the user's ~/.samp)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import anyio
import pytest
from astropy.table import Table

from vosweep.errors import UsageError
from vosweep.samp import MTYPE, SampError, _samp, hub_running, send_table
from vosweep.testing import SimulatedVO, build_fleet


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME in tmp_path and no SAMP_HUB: no lockfile of the user's is read or written."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    return tmp_path


@pytest.fixture
def hub(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    samp = _samp()
    lockfile = isolated_home / "samp-lock"
    server = samp.SAMPHubServer(
        web_profile=False, lockfile=str(lockfile), addr="127.0.0.1", label="vosweep-test"
    )
    server.start()
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    try:
        yield server
    finally:
        server.stop()


class _Receiver:
    """A TOPCAT stand-in: subscribed to table.load.votable, remembers what it was sent."""

    def __init__(self) -> None:
        self.client = _samp().SAMPIntegratedClient(name="receiver", addr="127.0.0.1")
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()

    def __enter__(self) -> Self:
        self.client.connect()
        self.client.bind_receive_notification(MTYPE, self._on_table)
        return self

    def _on_table(self, private_key: str, sender_id: str, mtype: str, params: Any, extra: Any):
        del private_key, extra
        self.received.append({"sender": sender_id, "mtype": mtype, **params})
        self.arrived.set()

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()


def test_table_arrives_at_a_subscribed_client(hub: Any) -> None:
    table = Table({"ra": [1.5, 2.5, 3.5], "name": ["a", "b", "c"]})
    with _Receiver() as receiver:
        delivery = send_table(table, name="my sweep", hub_timeout=10)
        assert receiver.arrived.wait(10), "the receiver got no table.load.votable"
    assert len(delivery.recipients) == 1
    message = receiver.received[0]
    assert message["mtype"] == MTYPE
    assert message["name"] == "my sweep"
    assert message["url"] == delivery.path.as_uri()
    back = Table.read(delivery.path, format="votable")
    assert list(back["ra"]) == [1.5, 2.5, 3.5]
    assert list(back["name"]) == ["a", "b", "c"]
    assert hub_running(hub_timeout=5)
    delivery.path.unlink()


def test_no_hub_is_a_clear_error(isolated_home: Path) -> None:
    assert not hub_running(hub_timeout=5)
    before = set(Path(tempfile.gettempdir()).glob("vosweep-*.vot"))
    with pytest.raises(SampError, match="no SAMP hub is running"):
        send_table(Table({"a": [1]}), hub_timeout=5)
    after = set(Path(tempfile.gettempdir()).glob("vosweep-*.vot"))
    assert after <= before, "the temporary VOTable of a failed hand-off was left behind"


def test_hub_without_table_clients_is_a_clear_error(hub: Any) -> None:
    with pytest.raises(SampError, match="no SAMP client listens for tables"):
        send_table(Table({"a": [1]}), hub_timeout=10)


def test_hung_hub_times_out(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lockfile naming a server that accepts but never answers: given up after the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    lockfile = isolated_home / "hung-lock"
    lockfile.write_text(
        f"samp.secret=x\nsamp.hub.xmlrpc.url=http://127.0.0.1:{port}/\nsamp.profile.version=1.3\n"
    )
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    try:
        with pytest.raises(SampError, match=r"did not answer within 0.5 s"):
            send_table(Table({"a": [1]}), hub_timeout=0.5)
        assert not hub_running(hub_timeout=0.5)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hub_timeout": 0}, "hub_timeout must be a positive"),
        ({"hub_timeout": -1}, "hub_timeout must be a positive"),
        ({"name": ""}, "non-empty name"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str, isolated_home: Path) -> None:
    with pytest.raises(UsageError, match=match):
        send_table(Table({"a": [1]}), **kwargs)


def test_not_a_table(isolated_home: Path) -> None:
    with pytest.raises(UsageError, match="needs an astropy Table, got list"):
        send_table([1, 2, 3])


@pytest.fixture(name="anyio_backend", scope="module")
def _anyio_backend() -> str:
    return "asyncio"


async def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "vosweep.cli", *args]
    return await anyio.run_process(command, check=False, env=dict(os.environ))


@pytest.mark.anyio
async def test_cli_samp_sends_the_sweep_table(hub: Any, tmp_path: Path) -> None:
    cone = ("cone", "--ra", "83.63", "--dec", "22.01", "--radius", "0.1", "--no-progress")
    async with SimulatedVO(build_fleet(3, 1, seed=4, latency_median=0.01)) as sim:
        urls = [service.url for service in sim.services]
        with _Receiver() as receiver:
            sent = await _cli(*cone, *urls, "--samp", "-o", str(tmp_path / "rows.vot"))
            assert await anyio.to_thread.run_sync(receiver.arrived.wait, 10)
        unheard = await _cli(*cone, *urls, "--samp")
    assert sent.returncode == 0, sent.stderr.decode()
    [message] = receiver.received
    assert message["name"] == "vosweep"
    shown = Table.read(message["url"], format="votable")
    written = Table.read(tmp_path / "rows.vot", format="votable")
    assert len(shown) == len(written) > 0
    await anyio.Path(unquote(urlsplit(message["url"]).path)).unlink()  # TOPCAT read it
    assert b"SAMP client(s)" in sent.stdout
    # A hub but nobody listening: the rows were produced, the hand-off failed: exit 3.
    assert unheard.returncode == 3, unheard.stderr.decode()
    assert b"SAMP hand-off failed: no SAMP client listens for tables" in unheard.stderr
