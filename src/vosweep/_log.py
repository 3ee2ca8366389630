"""vosweep's structured events. The library never configures logging.

If the application configured structlog, events go through its processors. Otherwise they
go to the standard library logger ``"vosweep"``, so that an unconfigured notebook is not
flooded with one line per service, and ``logging`` levels decide what is shown.

Applications (the ``vosweep`` command among them) may call `configure_logging` for a
ready-made setup: readable console lines for people, or JSON lines for long runs that
are read back by programs. Nothing in the library calls it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Literal, TextIO

import structlog

from vosweep.errors import UsageError

__all__ = [
    "BREAKER_OPENED",
    "CAPABILITIES_UNUSABLE",
    "CLEANUP_DONE",
    "CLEANUP_FAILED",
    "COVERAGE_UNCHECKED",
    "FANOUT_DONE",
    "FANOUT_STARTED",
    "FETCH_FAILED",
    "FETCH_FAILOVER",
    "FETCH_RETRY",
    "LEVELS",
    "REGISTRY_FAILOVER",
    "REGISTRY_NO_CAPABILITIES",
    "REGISTRY_SEARCH",
    "SERVICE_DONE",
    "configure_logging",
    "get_logger",
]

#: The canonical line: one per service per fan-out, with its whole outcome.
SERVICE_DONE = "vosweep.service.done"
#: One attempt failed (the request may still succeed on retry).
FETCH_FAILED = "vosweep.fetch.failed"
#: A service's host failed: the request moves on to a mirror URL.
FETCH_FAILOVER = "vosweep.fetch.failover"
#: A retry was scheduled, with the wait.
FETCH_RETRY = "vosweep.fetch.retry"
#: A host's circuit breaker opened: its remaining requests are skipped.
BREAKER_OPENED = "vosweep.breaker.opened"
#: A fan-out started / ended (with the per-status counts).
FANOUT_STARTED = "vosweep.fanout.started"
FANOUT_DONE = "vosweep.fanout.done"
#: A registry search answered (endpoint, resources found, overflow).
REGISTRY_SEARCH = "vosweep.registry.search"
#: A registry endpoint failed; the next one is tried.
REGISTRY_FAILOVER = "vosweep.registry.failover"
#: A registry has no usable capabilities document: conservative query shapes are used.
REGISTRY_NO_CAPABILITIES = "vosweep.registry.no_capabilities"
#: A service's VOSI capabilities are missing or unreadable: defaults are assumed.
CAPABILITIES_UNUSABLE = "vosweep.capabilities.unusable"
#: A coverage pre-filter could not be applied (registry lacks the tables, refused, down):
#: the services it would have spared are asked anyway.
COVERAGE_UNCHECKED = "vosweep.coverage.unchecked"
#: A UWS job was deleted after use / could not be deleted (it may be left on the server).
CLEANUP_DONE = "vosweep.cleanup.done"
CLEANUP_FAILED = "vosweep.cleanup.failed"

# The logging HOWTO's advice for libraries: without this, Python's last-resort handler
# would print every warning-level event to stderr in an unconfigured notebook.
logging.getLogger("vosweep").addHandler(logging.NullHandler())

_stdlib_logger = structlog.wrap_logger(
    logging.getLogger("vosweep"),
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=False),
    ],
    wrapper_class=structlog.stdlib.BoundLogger,
)


def get_logger() -> Any:
    """The logger to emit vosweep events on (decided per call: configuration may change)."""
    if structlog.is_configured():
        return structlog.get_logger("vosweep")
    return _stdlib_logger


#: The level names `configure_logging` takes.
LEVELS = ("debug", "info", "warning", "error", "critical")
#: The file `configure_logging` opened last (closed when it is called again).
_opened: TextIO | None = None


def configure_logging(
    format: Literal["console", "json"] = "console",  # noqa: A002 - the natural name
    level: str | int = "info",
    stream: TextIO | str | Path | None = None,
) -> None:
    """Configure structlog process-wide for an application: vosweep's events and its own.

    ``console`` renders ``timestamp [level] event key=value`` lines, in colour only when
    the stream is a terminal (a log file or a pipe gets no escape codes). ``json`` writes
    one JSON object per line (``event``, ``level``, ISO 8601 UTC ``timestamp`` and every
    field), the format for long sweeps whose logs are read back by programs: one
    ``vosweep.service.done`` line per service and a final ``vosweep.fanout.done``.

    Args:
        format: ``"console"`` or ``"json"``.
        level: Least severe level shown: a name (``"debug"`` .. ``"critical"``) or a
            `logging` number. ``info`` shows one line per service.
        stream: Where lines go: a text stream, or a file path (appended to, line
            buffered); default stderr.

    Raises:
        UsageError: An unknown format or level, or a file that cannot be opened.
    """
    global _opened  # noqa: PLW0603 - one process-wide configuration, like structlog's own
    if format not in ("console", "json"):
        raise UsageError(f"log format must be 'console' or 'json', got {format!r}")
    if isinstance(level, str):
        if level.lower() not in LEVELS:
            raise UsageError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
        number = logging.getLevelNamesMapping()[level.upper()]
    elif isinstance(level, int) and not isinstance(level, bool):
        number = level
    else:
        raise UsageError(f"log level must be a name or a number, got {level!r}")
    if isinstance(stream, str | Path):
        try:
            # Line buffered: a killed long run keeps every line written so far.
            out: TextIO = Path(stream).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot open log file {stream}: {exc.strerror}") from None
    else:
        out = stream if stream is not None else sys.stderr
    if _opened is not None and _opened is not out:
        _opened.close()
    _opened = out if isinstance(stream, str | Path) else None
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        isatty = getattr(out, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(isatty and isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *([structlog.processors.dict_tracebacks] if format == "json" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
