"""Which failures deserve another attempt, and how many a host may receive.

The waiting itself (capped exponential backoff with jitter, a time budget, and a server's
Retry-After in place of the computed backoff) is stamina's; tests switch it off with
``stamina.set_testing``.
"""

from __future__ import annotations

from collections import defaultdict

from vosweep.config import RetryPolicy
from vosweep.errors import RateLimited, ServiceError

__all__ = ["RetryBudget", "retry_decision"]


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


def retry_decision(exc: BaseException, policy: RetryPolicy) -> bool | float:
    """The stamina backoff hook's core: False (give up), True (back off), or seconds to wait.

    Anything that is not a `ServiceError` is a bug and is never retried.
    """
    if not isinstance(exc, ServiceError) or not exc.is_transient():
        return False
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        if exc.retry_after > policy.max_retry_after:
            return False
        # The server said when; add nothing of ours (stamina uses this as the wait).
        return max(exc.retry_after, 0.0) or True
    return True
