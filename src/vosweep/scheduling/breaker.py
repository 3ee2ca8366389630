"""Per-host circuit breakers: a pure state machine; the clock is passed in.

closed --(threshold consecutive host failures, and a failing share of the recent
answers)--> open --(cooldown passed)--> half-open
half-open --(the single probe succeeds)--> closed;  --(probe fails)--> open, cooldown doubled
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from vosweep.config import BreakerPolicy

__all__ = ["BreakerBoard", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """The three classic states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """One host's breaker. Methods take ``now`` (seconds, any monotonic origin)."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._failures = 0
        #: The host's latest answers, True for a failure (the ratio's window).
        self._recent: deque[bool] = deque(maxlen=policy.window)
        self._opened_at = 0.0
        self._cooldown = policy.cooldown
        self._open = False
        self._probing = False
        self.times_opened = 0
        self.last_error: str | None = None

    def state(self, now: float) -> BreakerState:
        """The state at time *now*."""
        if not self._open:
            return BreakerState.CLOSED
        if now - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def probe_in_flight(self) -> bool:
        """Whether a half-open probe is running (then other requests wait for its verdict)."""
        return self._probing

    def start_probe(self) -> None:
        """Note that the one half-open probe request was sent."""
        self._probing = True

    def abandon_probe(self) -> None:
        """The probe was cancelled before it could tell anything."""
        self._probing = False

    @property
    def cooldown(self) -> float:
        """Seconds the circuit stays open before the next probe."""
        return self._cooldown

    def retry_at(self) -> float:
        """When the open circuit will let a probe through."""
        return self._opened_at + self._cooldown

    def record_success(self, now: float) -> None:
        """A request to the host worked: the host is alive."""
        del now
        self._failures = 0
        self._recent.append(False)
        self._probing = False
        if self._open:
            self._open = False
            self._cooldown = self._policy.cooldown

    def record_failure(self, now: float, reason: str | None = None) -> None:
        """A request failed in a way that blames the host (connection, timeout, 5xx)."""
        self.last_error = reason
        if self._open:
            if self._probing or self.state(now) is BreakerState.HALF_OPEN:
                # The probe failed: back off harder before the next one.
                self._probing = False
                self._cooldown = min(self._cooldown * 2, self._policy.max_cooldown)
                self._opened_at = now
            return
        self._failures += 1
        self._recent.append(True)
        share = sum(self._recent) / len(self._recent)
        if self._failures >= self._policy.failure_threshold and share >= self._policy.failure_ratio:
            self._open = True
            self._opened_at = now
            self._probing = False
            self.times_opened += 1

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"<CircuitBreaker {state} failures={self._failures} cooldown={self._cooldown}s>"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One host's breaker at a moment."""

    host: str
    state: BreakerState
    times_opened: int
    last_error: str | None


class BreakerBoard:
    """The breakers of every host an engine has talked to."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._breakers: dict[str, CircuitBreaker] = {}

    @property
    def enabled(self) -> bool:
        """Whether breakers are in use at all."""
        return self._policy.enabled

    def __getitem__(self, host: str) -> CircuitBreaker:
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = self._breakers[host] = CircuitBreaker(self._policy)
        return breaker

    def state(self, host: str, now: float) -> BreakerState:
        """The state of *host*'s breaker (closed when breakers are off or host unknown)."""
        if not self._policy.enabled or host not in self._breakers:
            return BreakerState.CLOSED
        return self._breakers[host].state(now)

    def snapshot(self, now: float) -> list[BreakerSnapshot]:
        """Every breaker that ever opened, or is not closed now."""
        return [
            BreakerSnapshot(host, b.state(now), b.times_opened, b.last_error)
            for host, b in sorted(self._breakers.items())
            if b.times_opened or b.state(now) is not BreakerState.CLOSED
        ]
