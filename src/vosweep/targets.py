"""Everything a user may pass as fan-out targets, turned into `Service` objects.

Accepted: `Service` objects; access URLs (for a query that implies the protocol);
registry results and resources (vosweep's, or anything with a ``vosweep_services``
method), each standing for all its queryable interfaces of the query's protocol; and,
so that pyvo users keep their habits, pyvo's ``RegistryResults``/``RegistryResource``
and DAL service objects (``SCSService``, ``SIAService``, ``SIA2Service``, ``SSAService``,
``TAPService``). pyvo is recognised by duck typing and never imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vosweep.errors import UsageError
from vosweep.services import Protocol, Service, coerce_service, protocol_of_standard

__all__ = ["Skipped", "Targeted", "expand_targets", "is_single_target", "one_protocol_each"]


@dataclass(frozen=True, slots=True)
class Targeted:
    """One service with its own query: how a sweep asks each table in its own words.

    Global sweeps build different ADQL per service (the tables it holds, the columns
    its UCDs name), so their targets carry their query; a fan-out's own query, if any,
    goes to the plain targets. Several `Targeted` may ask one service (one query per
    table where UNION is not offered): *key* tells them apart.

    Attributes:
        service: The service to ask.
        query: What to ask it (`TapQuery`, `Cone`...).
        key: Distinguishes several queries to one service (e.g. a table name).
    """

    service: Service
    query: object
    key: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.service, Service):
            raise UsageError(f"Targeted needs a vosweep.Service, got {type(self.service).__name__}")
        if self.query is None:
            raise UsageError("Targeted needs a query")


#: pyvo DAL service classes and the protocol each speaks, looked for in this order along
#: the class's bases: SIA2Service first, because ``pyvo.dal.sia2.SIAService`` (pyvo's
#: deprecated name for it) is an SIA2Service whose own name says SIA.
_PYVO_SERVICES = {
    "SIA2Service": Protocol.SIA2,
    "SCSService": Protocol.SCS,
    "SIAService": Protocol.SIA,
    "SSAService": Protocol.SSA,
    "TAPService": Protocol.TAP,
}


Protocols = Protocol | frozenset[Protocol] | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A service a fan-out reports without asking it, and why (another interface serves it)."""

    service: Service
    reason: str


def expand_targets(
    targets: Iterable[object], protocol: Protocols, query: object = None
) -> Iterator[Service | str | Targeted | Skipped]:
    """Yield the services *targets* stand for, lazily (URLs are left for the planner).

    Args:
        targets: What the user passed.
        protocol: The protocol(s) the query fits (registry resources offer only their
            interfaces of those), or None for every queryable interface.
        query: The fan-out's query: decides which of a resource's protocols is asked
            when it offers several for the same data (see `one_protocol_each`).

    Raises:
        UsageError: A target of an unknown kind (named, with its position).
    """
    if _expands(targets):
        # Registry results (or one resource) passed whole: the spec that found them
        # decides which of their interfaces are wanted.
        yield from one_protocol_each(_services_of(targets, protocol), query)
        return
    for position, target in enumerate(targets):
        if isinstance(target, (Service, str, Targeted, Skipped)):
            yield target
            continue
        try:
            yield from one_protocol_each(_services_of(target, protocol), query)
        except UsageError as exc:
            raise UsageError(f"target #{position}: {exc}") from None


def one_protocol_each(services: list[Service], query: object) -> list[Service | Skipped]:
    """Ask a resource offering one data collection through several protocols only once.

    SIA 1.0 and 2.0 interfaces of one resource serve the same images: SIA2 is asked (its
    answers are ObsCore records, and it takes every constraint). A resource that also
    offers TAP, in a fan-out whose TAP query reads ``ivoa.obscore``, is asked through
    TAP alone. Other mixes (a cone search beside an image service) are different data
    and all asked.
    """
    by_resource: dict[str, set[Protocol]] = {}
    for service in services:
        if service.ivoid:
            by_resource.setdefault(service.ivoid, set()).add(service.protocol)
    tap = getattr(query, "for_protocol", None)
    tap_query = tap(Protocol.TAP) if callable(tap) else None
    obscore_tap = "ivoa.obscore" in str(getattr(tap_query, "adql", "")).lower()
    kept: list[Service | Skipped] = []
    for service in services:
        offered = by_resource.get(service.ivoid or "", set())
        reason = None
        if service.protocol in _IMAGES and obscore_tap and Protocol.TAP in offered:
            reason = "served through its ObsCore TAP interface instead"
        elif service.protocol is Protocol.SIA and Protocol.SIA2 in offered:
            reason = "served through its SIA2 interface instead"
        kept.append(service if reason is None else Skipped(service, reason))
    return kept


_IMAGES = frozenset({Protocol.SIA, Protocol.SIA2})


def _expands(targets: object) -> bool:
    """Whether *targets* is one target standing for many services, not a collection."""
    return callable(getattr(targets, "vosweep_services", None)) or (
        _is_pyvo(targets) and type(targets).__name__ in {"RegistryResults", "RegistryResource"}
    )


def _services_of(target: object, protocol: Protocols) -> list[Service]:
    expand = getattr(target, "vosweep_services", None)
    if callable(expand):
        services: list[Service] = expand(protocol)
        return services
    if _is_pyvo(target):
        return _from_pyvo(target, protocol)
    single = protocol if isinstance(protocol, Protocol) else None
    return [coerce_service(target, single)]  # raises the usual UsageError


def _pyvo_bases(target: object) -> set[str]:
    """Names of the pyvo classes *target* is an instance of (a user's subclasses count)."""
    return {
        cls.__name__
        for cls in type(target).__mro__
        if getattr(cls, "__module__", "").split(".", 1)[0] == "pyvo"
    }


def _is_pyvo(target: object) -> bool:
    return bool(_pyvo_bases(target))


def _from_pyvo(target: Any, protocol: Protocols) -> list[Service]:
    """Services of a pyvo DAL service, registry resource or registry result list."""
    kind = type(target).__name__
    bases = _pyvo_bases(target)
    speaks = next((p for name, p in _PYVO_SERVICES.items() if name in bases), None)
    if speaks is not None:
        # An SIA2Service built from a base URL found its query endpoint in the capabilities.
        url = getattr(target, "query_ep", None) if speaks is Protocol.SIA2 else None
        return [Service(protocol=speaks, access_url=str(url or target.baseurl))]
    if kind == "RegistryResults":
        return [service for resource in target for service in _from_pyvo(resource, protocol)]
    if kind == "RegistryResource":
        return _pyvo_resource(target, protocol)
    raise UsageError(f"cannot use pyvo's {kind} as a fan-out target")


def _pyvo_resource(resource: Any, protocol: Protocols) -> list[Service]:
    found = []
    for interface in resource.list_interfaces():
        standard_id = (interface.standard_id or "").lower()
        if not standard_id or not interface.is_standard:
            continue
        speaks = protocol_of_standard(standard_id)
        if speaks is None or not _fits(speaks, protocol):
            continue
        found.append(
            Service(
                protocol=speaks,
                access_url=interface.access_url,
                ivoid=resource.ivoid,
                name=resource.short_name or None,
                title=resource.res_title or None,
            )
        )
    return found


def _fits(speaks: Protocol, protocol: Protocols) -> bool:
    if protocol is None:
        return True
    if isinstance(protocol, Protocol):
        return speaks is protocol
    return speaks in protocol


def is_single_target(target: object) -> bool:
    """Whether *target* is one pyvo DAL service or resource (not a collection of targets)."""
    return _is_pyvo(target) and type(target).__name__ in {*_PYVO_SERVICES, "RegistryResource"}
