"""Server-side counters of the simulated VO and their immutable snapshots.

The counters are the proof that a client obeys its limits: the server, not the client,
says how many requests were in its handlers at once. Every request is counted exactly
once as ``completed`` or ``aborted`` when its handler ends (in a ``finally``), so
``requests == completed + aborted + in_flight`` holds at every instant, cancellation
included.

TAP services also count their UWS jobs, so that a test can prove a client leaves no job
behind: ``jobs_created == jobs_alive + jobs_deleted + jobs_destroyed`` since the last
reset, and ``jobs_alive`` is 0 once every job was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

__all__ = ["Counter", "HostStats", "ServiceStats", "SimStats"]


@dataclass(slots=True)
class Counter:
    """Mutable request counters of one host or one service (event-loop thread only)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    completed: int = 0
    aborted: int = 0
    rows_served: int = 0

    def begin(self) -> None:
        """A request entered the handler."""
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, *, completed: bool, rows: int) -> None:
        """A request left the handler, with its whole answer sent or not."""
        self.in_flight -= 1
        if completed:
            self.completed += 1
            self.rows_served += rows
        else:
            self.aborted += 1

    def reset(self) -> None:
        """Start counting afresh; requests still in the handlers stay in flight."""
        self.requests = self.in_flight
        self.max_in_flight = self.in_flight
        self.completed = self.aborted = self.rows_served = 0


class _Counts(BaseModel, frozen=True, extra="forbid"):
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    completed: int = 0
    aborted: int = 0
    rows_served: int = 0


class ServiceStats(_Counts, frozen=True, extra="forbid"):
    """What one simulated service has seen since start (or the last reset).

    Attributes:
        index: The service's index in the fleet.
        name: Its short name (``scs-00007``).
        host_index: The host it lives on.
        requests: Requests that reached its handler (redirect hops to it included).
        in_flight: Requests in its handler right now.
        max_in_flight: Peak of ``in_flight``.
        completed: Requests whose whole answer, of any status, was written.
        aborted: Requests that ended without a whole answer: the client went away, or the
            behaviour drops the connection (reset, truncated, hang, drip).
        rows_served: Table rows in completed HTTP 200 VOTable answers (overflow included).
        jobs_created: UWS jobs created (TAP only; after a reset: the jobs alive then).
        jobs_alive: Jobs created and neither deleted nor destroyed, right now.
        jobs_deleted: Jobs deleted by a client (``DELETE`` or ``ACTION=DELETE``).
        jobs_destroyed: Jobs the service destroyed at their destruction time.
        jobs_executing: Jobs in phase EXECUTING right now.
        max_jobs_executing: Peak of ``jobs_executing``.
    """

    index: int
    name: str
    host_index: int
    jobs_created: int = 0
    jobs_alive: int = 0
    jobs_deleted: int = 0
    jobs_destroyed: int = 0
    jobs_executing: int = 0
    max_jobs_executing: int = 0


class HostStats(_Counts, frozen=True, extra="forbid"):
    """What one simulated host has seen; the same counters, summed over its services.

    Requests to unknown paths count here (answered 404) but on no service.

    Attributes:
        index: The host index (the host listens on 127.0.0.(index+1)).
        name: The host name clients see (its loopback address).
        port: Its TCP port.
        dead: Whether nothing listens there (connections are refused).
        open_connections: TCP connections open right now (idle keep-alive ones included).
    """

    index: int
    name: str
    port: int
    dead: bool = False
    open_connections: int = 0


class SimStats(BaseModel, frozen=True, extra="forbid"):
    """A snapshot of every counter of a simulated VO.

    Attributes:
        hosts: One entry per host, by host index.
        services: One entry per service, by service index.
        max_in_flight: Peak of requests in handlers at once over the whole fleet: what a
            client's global limit must bound.
        max_jobs_executing: Peak of UWS jobs executing at once over the whole fleet.
    """

    hosts: tuple[HostStats, ...]
    services: tuple[ServiceStats, ...]
    max_in_flight: int = 0
    max_jobs_executing: int = 0

    def host(self, index: int) -> HostStats:
        """The counters of host *index*."""
        for host in self.hosts:
            if host.index == index:
                return host
        raise KeyError(f"no host {index}")

    def service(self, index: int) -> ServiceStats:
        """The counters of service *index*."""
        for service in self.services:
            if service.index == index:
                return service
        raise KeyError(f"no service {index}")

    @property
    def requests(self) -> int:
        """Requests over all hosts."""
        return sum(h.requests for h in self.hosts)

    @property
    def in_flight(self) -> int:
        """Requests in handlers right now, over all hosts."""
        return sum(h.in_flight for h in self.hosts)

    @property
    def max_in_flight_per_host(self) -> int:
        """The highest per-host peak: what a per-host politeness limit must bound."""
        return max((h.max_in_flight for h in self.hosts), default=0)

    @property
    def completed(self) -> int:
        """Whole answers written, over all hosts."""
        return sum(h.completed for h in self.hosts)

    @property
    def aborted(self) -> int:
        """Requests that ended without a whole answer, over all hosts."""
        return sum(h.aborted for h in self.hosts)

    @property
    def rows_served(self) -> int:
        """Table rows in completed 200 VOTable answers, over all services."""
        return sum(s.rows_served for s in self.services)

    @property
    def open_connections(self) -> int:
        """TCP connections open right now, over all hosts."""
        return sum(h.open_connections for h in self.hosts)

    @property
    def jobs_created(self) -> int:
        """UWS jobs created, over all services."""
        return sum(s.jobs_created for s in self.services)

    @property
    def jobs_alive(self) -> int:
        """UWS jobs created and not deleted nor destroyed, over all services."""
        return sum(s.jobs_alive for s in self.services)

    @property
    def jobs_deleted(self) -> int:
        """UWS jobs deleted by clients, over all services."""
        return sum(s.jobs_deleted for s in self.services)

    @property
    def jobs_destroyed(self) -> int:
        """UWS jobs destroyed at their destruction time, over all services."""
        return sum(s.jobs_destroyed for s in self.services)

    @property
    def jobs_executing(self) -> int:
        """UWS jobs executing right now, over all services."""
        return sum(s.jobs_executing for s in self.services)
