"""Plan: targets + query -> jobs (one request per distinct service), lazily and purely."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from vosweep.errors import UsageError
from vosweep.protocols import PROTOCOLS, ProtocolSpec
from vosweep.protocols.base import Request
from vosweep.queries import PerProtocol
from vosweep.services import Protocol, Service, coerce_service
from vosweep.targets import Skipped, Targeted

__all__ = ["DUPLICATE", "Job", "Plan"]

#: Why a target whose job an earlier target already has is not asked again.
DUPLICATE = "duplicate of an earlier target"


@dataclass(frozen=True, slots=True)
class Job:
    """One service to ask.

    Attributes:
        index: The service's position among the fan-out targets (orders the report).
        service: The service.
        request: The built request, or ``None`` when the job is not to be sent.
        spec: The protocol that builds and parses it.
        skip_reason: Why the job is not sent (duplicate, query does not fit).
        query: The query, to rebuild the request for a mirror.
        origin: The registered service, when this job asks one of its mirrors.
        failovers: Access URLs given up on (unreachable) before this job's.
    """

    index: int
    service: Service
    request: Request | None = None
    spec: ProtocolSpec | None = None
    skip_reason: str | None = None
    query: object = None
    origin: Service | None = None
    failovers: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        """The host name that keys limits and breakers."""
        return self.service.host

    @property
    def reported(self) -> Service:
        """The service the outcome is about: the registered one, also when a mirror answers."""
        return self.origin or self.service

    def mirror(self) -> Job | None:
        """The same request sent to the service's next mirror URL, or None if it has none.

        RegTAP 1.1 registers mirrors of an interface (``mirror_url``): when the access URL
        cannot be reached, its mirrors can answer the same query.
        """
        service = self.service
        if not service.mirrors or self.spec is None or self.request is None:
            return None
        first, *rest = service.mirrors
        # Built anew, not model_copy'd: the cached host must be the mirror's.
        moved = Service(
            protocol=service.protocol,
            access_url=first,
            ivoid=service.ivoid,
            name=service.name,
            title=service.title,
            mirrors=tuple(rest),
        )
        try:
            request = self.spec.build(moved, self.query)
        except UsageError:
            return None
        return Job(
            self.index,
            moved,
            request,
            self.spec,
            query=self.query,
            origin=self.reported,
            failovers=(*self.failovers, service.access_url),
        )


class Plan:
    """Jobs for *targets*, read lazily so that huge target lists cost no memory up front.

    A target with an access URL already planned is skipped as a duplicate (registries list
    one endpoint under several resources). A target whose protocol cannot express the query
    is skipped with the reason, not failed: it was never asked. `Targeted` targets bring
    their own query (and key: one service may be asked once per key).
    """

    def __init__(
        self,
        targets: Iterable[object],
        query: object | None,
        excluded: Mapping[str, str] | None = None,
    ) -> None:
        self._targets = enumerate(targets)
        self._query = query
        self._default = getattr(query, "default_protocol", None)
        self._seen: set[tuple[str, str, str]] = set()
        #: Why some resources (by ivoid) are not to be asked: out of coverage, say.
        self._excluded = excluded or {}

    def __iter__(self) -> Iterator[Job]:
        return self

    def __next__(self) -> Job:
        index, target = next(self._targets)
        if isinstance(target, Skipped):
            return Job(index, target.service, skip_reason=target.reason)
        service, query, extra = split_target(target, self._query, self._default)
        key = (service.protocol.value, service.access_url, extra)
        if key in self._seen:
            return Job(index, service, skip_reason=DUPLICATE)
        self._seen.add(key)
        if service.ivoid and (reason := self._excluded.get(service.ivoid.lower())):
            return Job(index, service, skip_reason=reason)
        spec = PROTOCOLS.get(service.protocol)
        if spec is None:
            return Job(index, service, skip_reason=f"protocol {service.protocol} not supported")
        if isinstance(query, PerProtocol):
            query = query.for_protocol(service.protocol)
            if query is None:
                reason = f"no query given for {service.protocol.value.upper()} services"
                return Job(index, service, skip_reason=reason)
        try:
            request = spec.build(service, query)
        except UsageError as exc:
            return Job(index, service, skip_reason=str(exc))
        return Job(index, service, request, spec, query=query)

    def rest(self) -> Iterator[Job]:
        """The targets not read yet, without building requests (for reporting them)."""
        for index, target in self._targets:
            try:
                service, _, _ = split_target(target, self._query, self._default)
            except UsageError:
                continue  # the run is ending on a usage error already
            yield Job(index, service)


def split_target(
    target: object, query: object | None, default: Protocol | None
) -> tuple[Service, object, str]:
    """A target's service, the query it gets and its de-duplication key.

    Raises:
        UsageError: A target that is no service, or a plain target with no query to ask.
    """
    if isinstance(target, Targeted):
        return target.service, target.query, target.key
    if isinstance(target, Skipped):
        return target.service, query, ""
    service = coerce_service(target, default)
    if query is None:
        raise UsageError(
            f"no query for {service.label}: give the fan-out a query, or vosweep.Targeted targets"
        )
    return service, query, ""
