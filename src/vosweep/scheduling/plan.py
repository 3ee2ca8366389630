"""Plan: targets + query -> jobs (one request per distinct service), lazily and purely."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vosweep.errors import UsageError
from vosweep.protocols import PROTOCOLS, ProtocolSpec
from vosweep.protocols.base import Request
from vosweep.services import Service, coerce_service

__all__ = ["Job", "Plan"]


@dataclass(frozen=True, slots=True)
class Job:
    """One service to ask.

    Attributes:
        index: The service's position among the fan-out targets (orders the report).
        service: The service.
        request: The built request, or ``None`` when the job is not to be sent.
        spec: The protocol that builds and parses it.
        skip_reason: Why the job is not sent (duplicate, query does not fit).
    """

    index: int
    service: Service
    request: Request | None = None
    spec: ProtocolSpec | None = None
    skip_reason: str | None = None

    @property
    def host(self) -> str:
        """The host name that keys limits and breakers."""
        return self.service.host


class Plan:
    """Jobs for *targets*, read lazily so that huge target lists cost no memory up front.

    A target with an access URL already planned is skipped as a duplicate (registries list
    one endpoint under several resources). A target whose protocol cannot express the query
    is skipped with the reason, not failed: it was never asked.
    """

    def __init__(self, targets: Iterable[object], query: object) -> None:
        self._targets = enumerate(targets)
        self._query = query
        self._default = getattr(query, "default_protocol", None)
        self._seen: set[tuple[str, str]] = set()

    def __iter__(self) -> Iterator[Job]:
        return self

    def __next__(self) -> Job:
        index, target = next(self._targets)
        service = coerce_service(target, self._default)
        key = (service.protocol.value, service.access_url)
        if key in self._seen:
            return Job(index, service, skip_reason="duplicate of an earlier target")
        self._seen.add(key)
        spec = PROTOCOLS.get(service.protocol)
        if spec is None:
            return Job(index, service, skip_reason=f"protocol {service.protocol} not supported")
        try:
            request = spec.build(service, self._query)
        except UsageError as exc:
            return Job(index, service, skip_reason=str(exc))
        return Job(index, service, request, spec)

    def rest(self) -> Iterator[Job]:
        """The targets not read yet, without building requests (for reporting them)."""
        for index, target in self._targets:
            try:
                service = coerce_service(target, self._default)
            except UsageError:
                continue  # the run is ending on a usage error already
            yield Job(index, service)
