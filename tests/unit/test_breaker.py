"""The circuit breaker is a pure state machine driven with plain numbers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vosweep.config import BreakerPolicy
from vosweep.scheduling.breaker import BreakerBoard, BreakerState, CircuitBreaker

POLICY = BreakerPolicy(failure_threshold=3, cooldown=10, max_cooldown=40)


class TestCircuitBreaker:
    def test_opens_after_threshold_consecutive_failures(self):
        """Three failures in a row open the circuit."""
        b = CircuitBreaker(POLICY)
        for t in range(2):
            b.record_failure(t)
            assert b.state(t) is BreakerState.CLOSED
        b.record_failure(2)
        assert b.state(2) is BreakerState.OPEN
        assert b.times_opened == 1

    def test_success_resets_the_count(self):
        """Failures must be consecutive."""
        b = CircuitBreaker(POLICY)
        b.record_failure(0)
        b.record_failure(1)
        b.record_success(2)
        b.record_failure(3)
        b.record_failure(4)
        assert b.state(4) is BreakerState.CLOSED

    def test_half_open_after_cooldown_then_recovers(self):
        """After the cooldown one probe is allowed; its success closes the circuit."""
        b = CircuitBreaker(POLICY)
        for t in range(3):
            b.record_failure(t)
        assert b.state(11.9) is BreakerState.OPEN
        assert b.state(12) is BreakerState.HALF_OPEN
        b.start_probe()
        assert b.probe_in_flight()
        b.record_success(12.5)
        assert b.state(12.5) is BreakerState.CLOSED
        assert not b.probe_in_flight()

    def test_failed_probe_doubles_cooldown_up_to_max(self):
        """Each failed probe doubles the wait, capped."""
        b = CircuitBreaker(POLICY)
        for t in range(3):
            b.record_failure(t)
        now = 2.0
        expected = [20, 40, 40]
        for cooldown in expected:
            now += b.cooldown
            assert b.state(now) is BreakerState.HALF_OPEN
            b.start_probe()
            b.record_failure(now)
            assert b.cooldown == cooldown
            assert b.state(now) is BreakerState.OPEN

    def test_abandoned_probe_allows_another(self):
        """A cancelled probe does not leave the host stuck half-open forever."""
        b = CircuitBreaker(POLICY)
        for t in range(3):
            b.record_failure(t)
        b.start_probe()
        b.abandon_probe()
        assert not b.probe_in_flight()

    @given(st.lists(st.booleans(), max_size=60))
    def test_never_open_without_threshold_failures(self, events):
        """The circuit opens exactly when `threshold` consecutive failures are also a
        `failure_ratio` share of the last `window` answers."""
        b = CircuitBreaker(POLICY)
        run = 0
        history: list[bool] = []
        for t, ok in enumerate(events):
            if b.state(t) is not BreakerState.CLOSED:
                break
            history.append(not ok)
            if ok:
                b.record_success(t)
                run = 0
            else:
                b.record_failure(t)
                run += 1
            recent = history[-POLICY.window :]
            expected = run >= POLICY.failure_threshold and (
                sum(recent) / len(recent) >= POLICY.failure_ratio
            )
            assert (b.state(t) is BreakerState.OPEN) == expected


class TestBreakerBoard:
    def test_disabled_board_is_always_closed(self):
        """With breakers off, every host reads closed."""
        board = BreakerBoard(BreakerPolicy(enabled=False))
        for t in range(10):
            board["h"].record_failure(t)
        assert board.state("h", 10) is BreakerState.CLOSED

    def test_snapshot_lists_troubled_hosts(self):
        """The snapshot names hosts that opened."""
        board = BreakerBoard(POLICY)
        board["ok.test"].record_success(0)
        for t in range(3):
            board["dead.test"].record_failure(t, "refused")
        snap = board.snapshot(3)
        assert [s.host for s in snap] == ["dead.test"]
        assert snap[0].last_error == "refused"


class TestFailureRatio:
    """A host answering well does not open on a burst of its slowest services' timeouts."""

    def test_burst_on_a_healthy_host_keeps_it_closed(self):
        breaker = CircuitBreaker(BreakerPolicy(failure_threshold=5, failure_ratio=0.5, window=20))
        for _ in range(15):
            breaker.record_success(0.0)
        for _ in range(5):
            breaker.record_failure(1.0, "timeout")
        assert breaker.state(1.0) is BreakerState.CLOSED

    def test_a_dead_host_still_opens_after_threshold(self):
        breaker = CircuitBreaker(BreakerPolicy(failure_threshold=5))
        for _ in range(4):
            breaker.record_failure(0.0, "refused")
        assert breaker.state(0.0) is BreakerState.CLOSED
        breaker.record_failure(0.0, "refused")
        assert breaker.state(0.0) is BreakerState.OPEN

    def test_a_host_that_turns_bad_opens_once_failures_dominate(self):
        breaker = CircuitBreaker(BreakerPolicy(failure_threshold=5, failure_ratio=0.5, window=20))
        for _ in range(15):
            breaker.record_success(0.0)
        for _ in range(9):
            breaker.record_failure(1.0, "refused")
        assert breaker.state(1.0) is BreakerState.CLOSED  # 9 of the last 20
        breaker.record_failure(1.0, "refused")
        assert breaker.state(1.0) is BreakerState.OPEN  # 10 of 20
