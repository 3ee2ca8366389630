"""Host limits count exactly; the retry decision and budget follow the rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vosweep.config import RetryPolicy
from vosweep.errors import (
    HTTPStatusError,
    QueryRejected,
    RateLimited,
    ResponseFormatError,
    ServiceTimeout,
    TransportError,
    counts_against_host,
)
from vosweep.scheduling.limits import HostLimits
from vosweep.scheduling.retry import RetryBudget, backoff, is_retryable, no_backoff


class TestHostLimits:
    def test_caps(self):
        """Neither cap can be passed."""
        limits = HostLimits(total=3, per_host=2)
        limits.acquire("a")
        limits.acquire("a")
        assert not limits.can_start("a")
        assert limits.can_start("b")
        limits.acquire("b")
        assert not limits.can_start("c")
        with pytest.raises(RuntimeError, match="scheduler bug"):
            limits.acquire("c")

    def test_statistics_and_repr(self):
        """Statistics are a snapshot with peaks; the repr shows the numbers."""
        limits = HostLimits(total=10, per_host=5)
        for _ in range(3):
            limits.acquire("a")
        limits.release("a")
        stats = limits.statistics()
        assert stats.in_flight == 2
        assert stats.in_flight_by_host == {"a": 2}
        assert stats.peak_by_host == {"a": 3}
        assert "2/10 in flight" in repr(limits)

    @given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=100))
    def test_random_walk_never_exceeds(self, ops):
        """Whatever the order of acquire/release, counts stay within caps and non-negative."""
        limits = HostLimits(total=4, per_host=2)
        held: list[str] = []
        for host, take in ops:
            if take and limits.can_start(host):
                limits.acquire(host)
                held.append(host)
            elif not take and host in held:
                held.remove(host)
                limits.release(host)
            stats = limits.statistics()
            assert stats.in_flight == len(held) <= 4
            assert all(0 < n <= 2 for n in stats.in_flight_by_host.values())


class TestRetryDecision:
    policy = RetryPolicy(max_retry_after=20, wait_initial=0.5, wait_max=4, wait_jitter=0)

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
    def test_transient_statuses_retry(self, status):
        """5xx, 408 and 429 are worth another attempt."""
        assert is_retryable(HTTPStatusError("x", status=status), self.policy)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
    def test_client_errors_do_not(self, status):
        """Other 4xx will fail the same way again."""
        assert not is_retryable(HTTPStatusError("x", status=status), self.policy)

    def test_connection_errors_retry(self):
        """Refused or reset connections are transient."""
        assert is_retryable(TransportError("reset"), self.policy)

    @pytest.mark.parametrize(
        "exc",
        [QueryRejected("bad"), ResponseFormatError("junk"), ServiceTimeout("slow"), ValueError()],
    )
    def test_never_retried(self, exc):
        """Malformed data, QUERY_STATUS=ERROR, timeouts and bugs are not retried."""
        assert not is_retryable(exc, self.policy)

    def test_retry_after_becomes_the_wait(self):
        """Retry-After replaces the computed backoff."""
        exc = RateLimited("x", retry_after=3, status=429)
        assert is_retryable(exc, self.policy)
        assert backoff(1, exc, self.policy) == 3

    def test_too_long_retry_after_gives_up(self):
        """A Retry-After beyond the cap ends the request instead of parking it."""
        assert not is_retryable(RateLimited("x", retry_after=600, status=503), self.policy)

    def test_exponential_and_capped(self):
        """Waits double from wait_initial and stop growing at wait_max."""
        waits = [backoff(n, TransportError("x"), self.policy) for n in range(1, 6)]
        assert waits == [0.5, 1.0, 2.0, 4.0, 4.0]

    @given(st.integers(1, 50))
    def test_jitter_stays_in_bounds(self, attempt):
        """Jitter adds between 0 and wait_jitter seconds."""
        policy = RetryPolicy(wait_initial=0.1, wait_max=1.0, wait_jitter=0.5)
        base = min(1.0, 0.1 * 2.0 ** (attempt - 1))
        assert base <= backoff(attempt, None, policy) <= base + 0.5

    def test_no_backoff_switch(self):
        """The test switch zeroes every wait, Retry-After included, and restores itself."""
        exc = RateLimited("x", retry_after=3, status=429)
        with no_backoff():
            assert backoff(3, exc, self.policy) == 0
        assert backoff(3, exc, self.policy) == 3

    def test_host_blame(self):
        """Only host-level failures feed the breaker."""
        assert counts_against_host(TransportError("x"))
        assert counts_against_host(ServiceTimeout("x"))
        assert counts_against_host(HTTPStatusError("x", status=500))
        assert not counts_against_host(HTTPStatusError("x", status=404))
        assert not counts_against_host(RateLimited("x", status=503, retry_after=1))
        assert not counts_against_host(QueryRejected("x"))


class TestRetryBudget:
    def test_floor_then_ratio(self):
        """A host gets `min` retries plus `ratio` per request."""
        budget = RetryBudget(ratio=0.5, minimum=2)
        assert budget.try_spend("h")
        assert budget.try_spend("h")
        assert not budget.try_spend("h")
        budget.record_request("h")
        budget.record_request("h")
        assert budget.try_spend("h")
        assert not budget.try_spend("h")
        assert budget.retries("h") == 3
        assert budget.try_spend("other")
