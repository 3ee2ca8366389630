"""Multi-request exchanges (UWS jobs, uploads in batches) written as sans-I/O generators.

A TAP async query is a conversation: create a job, start it, wait, fetch the result,
delete the job. The protocol code writes it as a generator that *yields* what it needs
(`Send` a request, `Sleep`, run `Work` off the event loop, look up a service's cached
`Capabilities`, read the clock, register a `Cleanup`, `Note` and `Recall` what it learnt
about a service) and receives the answers; the
scheduler drives it under the same limits, retries, breakers and deadline as a single
request, and owns the I/O. Errors of a `Send` are thrown into the generator at the
``yield``, so protocol code handles the ones it can (a ``WAIT`` a server refuses) with
ordinary ``try``/``except``.

Cleanups are requests the scheduler must send whatever happens afterwards (cancelled
fan-out, deadline, failure): the ``DELETE`` of a UWS job, so that no job is left behind
on a server.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vosweep.protocols.base import Parsed, Request

__all__ = [
    "Capabilities",
    "Cleanup",
    "Conversation",
    "Note",
    "Now",
    "Recall",
    "Send",
    "Sleep",
    "Step",
    "Work",
]


@dataclass(frozen=True, slots=True)
class Send:
    """Send *request*; the answer is the `Response`.

    Attributes:
        request: What to send.
        accept: HTTP statuses handed back as they are (e.g. 303 of a UWS job creation);
            any other non-2xx status raises the usual `HTTPStatusError` into the generator.
        extra_time: Seconds added to the read and attempt timeouts (a UWS ``WAIT``).
        retry: Whether transient failures are retried (the engine's retry policy).
        report: Whether the outcome reports this exchange (URL, status, bytes) if it is
            the last one; housekeeping (a job's deletion) is not the answer.
    """

    request: Request
    accept: frozenset[int] = frozenset()
    extra_time: float = 0.0
    retry: bool = True
    report: bool = True


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause; the answer is None.

    Attributes:
        seconds: How long.
        hold: Keep the host slot meanwhile. A UWS job being polled is work running on
            the server, so it keeps counting against the host's limit (which then also
            bounds the jobs running at once per host); a plain pause gives it back.
    """

    seconds: float
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Work:
    """Run ``func(*args)`` in a worker thread (parsing, serialising); the answer is its result."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The VOSI capabilities of the service at *base_url* (fetched once, cached by the engine).

    The answer is a `vosweep.protocols.vosi.ServiceCapabilities`, or None when the service
    has no usable capabilities document (missing, broken): callers then assume defaults.
    """

    base_url: str


@dataclass(frozen=True, slots=True)
class Now:
    """The answer is the scheduler's clock (seconds, monotonic)."""


@dataclass(frozen=True, slots=True)
class Cleanup:
    """Register what to send if the conversation ends before it cleans up itself.

    A conversation deletes its UWS jobs itself as it goes; a registered cleanup covers
    the ends it cannot see (cancellation, deadline). Registering *key* again replaces
    its requests; empty *requests* withdraw it.

    Attributes:
        key: What is cleaned up (a job's URL).
        requests: Alternatives, tried in order until one is not refused (HTTP ``DELETE``
            first, then UWS's ``POST ACTION=DELETE`` for servers without DELETE).
    """

    key: str
    requests: tuple[Request, ...] = ()


@dataclass(frozen=True, slots=True)
class Recall:
    """The answer is what the engine noted under *key* (see `Note`), or None."""

    key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Note:
    """Remember *value* under *key* for the engine's lifetime (e.g. "this service is slow")."""

    key: tuple[str, ...]
    value: object


Step = Send | Sleep | Work | Capabilities | Now | Cleanup | Recall | Note
#: What protocol code writes: yields steps, receives their answers, returns the result.
Conversation = Generator[Step, Any, "Parsed"]
