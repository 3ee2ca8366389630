"""Global and per-host concurrency accounting, with statistics that explain themselves.

The dispatcher is the only place that starts requests, so limits are checked and taken
there in one synchronous step: a host at its cap is simply not picked, and its queued work
never occupies a global slot (no head-of-line blocking of other hosts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["HostLimits", "HostLimitsStatistics"]


@dataclass(frozen=True, slots=True)
class HostLimitsStatistics:
    """A snapshot of the limiter.

    Attributes:
        total: The global cap.
        per_host: The per-host cap.
        in_flight: Requests running now, over all hosts.
        in_flight_by_host: Requests running now, per host (hosts with none are left out).
        peak: The most requests ever running at once.
        peak_by_host: The most requests ever running at once on each host.
    """

    total: int
    per_host: int
    in_flight: int
    in_flight_by_host: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    peak_by_host: dict[str, int] = field(default_factory=dict)


class HostLimits:
    """Counts requests in flight globally and per host name; never lets either pass its cap."""

    def __init__(self, total: int, per_host: int) -> None:
        self.total = total
        self.per_host = per_host
        self._in_flight = 0
        self._by_host: defaultdict[str, int] = defaultdict(int)
        self._peak = 0
        self._peak_by_host: defaultdict[str, int] = defaultdict(int)

    def has_global_room(self) -> bool:
        """Whether one more request may start somewhere."""
        return self._in_flight < self.total

    def can_start(self, host: str) -> bool:
        """Whether one more request may start on *host* now."""
        return self._in_flight < self.total and self._by_host[host] < self.per_host

    def acquire(self, host: str) -> None:
        """Take a slot on *host*; the caller checked `can_start` first."""
        if not self.can_start(host):
            raise RuntimeError(f"limit exceeded for {host!r}: this is a scheduler bug")
        self._in_flight += 1
        self._by_host[host] += 1
        self._peak = max(self._peak, self._in_flight)
        self._peak_by_host[host] = max(self._peak_by_host[host], self._by_host[host])

    def release(self, host: str) -> None:
        """Give back a slot taken with `acquire`."""
        self._in_flight -= 1
        self._by_host[host] -= 1
        if not self._by_host[host]:
            del self._by_host[host]

    def statistics(self) -> HostLimitsStatistics:
        """An immutable snapshot of the counters."""
        return HostLimitsStatistics(
            total=self.total,
            per_host=self.per_host,
            in_flight=self._in_flight,
            in_flight_by_host=dict(self._by_host),
            peak=self._peak,
            peak_by_host=dict(self._peak_by_host),
        )

    def __repr__(self) -> str:
        return (
            f"<HostLimits [{self._in_flight}/{self.total} in flight | "
            f"{len(self._by_host)} hosts busy, per-host cap {self.per_host}]>"
        )
