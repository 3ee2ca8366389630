"""Which failures deserve another attempt, how long to wait, and how many a host may get.

The retry loop itself is tenacity's (async, a stop on attempts and on total time, a
pluggable wait). vosweep decides what is transient and how long to wait: capped
exponential backoff with full jitter on top, or the server's ``Retry-After`` when it sends
one. tenacity rather than stamina: stamina's default instrumentation prints every retry to
stdout when structlog is not configured, and a library must not write into its users'
notebooks (switching it off is process-wide).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from vosweep.config import RetryPolicy
from vosweep.errors import RateLimited, ServiceError

__all__ = ["RetryBudget", "backoff", "is_retryable", "no_backoff"]


class _Switch:
    # Kept on a class so that tests (and users' tests) flip it through no_backoff().
    no_wait = False


@contextmanager
def no_backoff() -> Iterator[None]:
    """Make every retry wait zero seconds (``Retry-After`` included), for test suites.

    Attempts, budgets and breakers work as usual; only the sleeping goes. Restores the
    previous state on exit.
    """
    previous = _Switch.no_wait
    _Switch.no_wait = True
    try:
        yield
    finally:
        _Switch.no_wait = previous


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    """Whether *exc* deserves another attempt under *policy*.

    Only transient service errors do (connection trouble, 5xx, 408, 425, 429, 503); a
    ``Retry-After`` longer than the policy accepts ends the request instead of parking it.
    Anything that is not a `ServiceError` is a bug and is never retried.
    """
    if not isinstance(exc, ServiceError) or not exc.is_transient():
        return False
    return not (
        isinstance(exc, RateLimited)
        and exc.retry_after is not None
        and exc.retry_after > policy.max_retry_after
    )


def backoff(attempt: int, exc: BaseException | None, policy: RetryPolicy) -> float:
    """Seconds to wait after failed attempt number *attempt* (1-based).

    The server's ``Retry-After`` wins when there is one: it said when to come back, and
    coming back earlier only earns another 429.
    """
    if _Switch.no_wait:
        return 0.0
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    base = min(policy.wait_max, policy.wait_initial * 2.0 ** (attempt - 1))
    return base + random.uniform(0.0, policy.wait_jitter)


class RetryBudget:
    """A per-host retry budget: ``min + ratio * requests`` retries in all.

    A host that fails everything gets a bounded number of retries, instead of every one of
    its thousands of requests retrying (a retry storm on an already sick server).
    """

    def __init__(self, ratio: float, minimum: int) -> None:
        self._ratio = ratio
        self._minimum = minimum
        self._requests: defaultdict[str, int] = defaultdict(int)
        self._retries: defaultdict[str, int] = defaultdict(int)

    def record_request(self, host: str) -> None:
        """A new request (not a retry) goes to *host*."""
        self._requests[host] += 1

    def try_spend(self, host: str) -> bool:
        """Take one retry from *host*'s budget if any is left."""
        allowed = self._minimum + self._ratio * self._requests[host]
        if self._retries[host] + 1 > allowed:
            return False
        self._retries[host] += 1
        return True

    def retries(self, host: str) -> int:
        """Retries spent on *host* so far."""
        return self._retries[host]
