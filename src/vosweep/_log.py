"""vosweep's structured events. The library never configures logging.

If the application configured structlog, events go through its processors. Otherwise they
go to the standard library logger ``"vosweep"``, so that an unconfigured notebook is not
flooded with one line per service, and ``logging`` levels decide what is shown.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = [
    "BREAKER_OPENED",
    "CAPABILITIES_UNUSABLE",
    "CLEANUP_DONE",
    "CLEANUP_FAILED",
    "FANOUT_DONE",
    "FANOUT_STARTED",
    "FETCH_FAILED",
    "FETCH_FAILOVER",
    "FETCH_RETRY",
    "REGISTRY_FAILOVER",
    "REGISTRY_NO_CAPABILITIES",
    "REGISTRY_SEARCH",
    "SERVICE_DONE",
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
