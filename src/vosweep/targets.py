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
from typing import Any

from vosweep.errors import UsageError
from vosweep.services import Protocol, Service, coerce_service, protocol_of_standard

__all__ = ["expand_targets", "is_single_target"]

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


def expand_targets(targets: Iterable[object], protocol: Protocols) -> Iterator[Service | str]:
    """Yield the services *targets* stand for, lazily (URLs are left for the planner).

    Args:
        targets: What the user passed.
        protocol: The protocol(s) the query fits (registry resources offer only their
            interfaces of those), or None for every queryable interface.

    Raises:
        UsageError: A target of an unknown kind (named, with its position).
    """
    if _expands(targets):
        # Registry results (or one resource) passed whole: the spec that found them
        # decides which of their interfaces are wanted.
        yield from _services_of(targets, protocol)
        return
    for position, target in enumerate(targets):
        if isinstance(target, (Service, str)):
            yield target
            continue
        try:
            yield from _services_of(target, protocol)
        except UsageError as exc:
            raise UsageError(f"target #{position}: {exc}") from None


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
