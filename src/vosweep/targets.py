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
from vosweep.services import Protocol, Service, coerce_service

__all__ = ["expand_targets"]

#: pyvo DAL service classes and the protocol each speaks.
_PYVO_SERVICES = {
    "SCSService": Protocol.SCS,
    "SIAService": Protocol.SIA,
    "SIA2Service": Protocol.SIA2,
    "SSAService": Protocol.SSA,
    "TAPService": Protocol.TAP,
}
_STD = "ivo://ivoa.net/std/"


def expand_targets(targets: Iterable[object], protocol: Protocol | None) -> Iterator[Service | str]:
    """Yield the services *targets* stand for, lazily (URLs are left for the planner).

    Args:
        targets: What the user passed.
        protocol: The protocol the query implies (registry resources offer only their
            interfaces of that protocol), or None for every queryable interface.

    Raises:
        UsageError: A target of an unknown kind (named, with its position).
    """
    for position, target in enumerate(targets):
        if isinstance(target, (Service, str)):
            yield target
            continue
        try:
            yield from _services_of(target, protocol)
        except UsageError as exc:
            raise UsageError(f"target #{position}: {exc}") from None


def _services_of(target: object, protocol: Protocol | None) -> list[Service]:
    expand = getattr(target, "vosweep_services", None)
    if callable(expand):
        services: list[Service] = expand(protocol)
        return services
    if _is_pyvo(target):
        return _from_pyvo(target, protocol)
    return [coerce_service(target, protocol)]  # raises the usual UsageError


def _is_pyvo(target: object) -> bool:
    return type(target).__module__.split(".", 1)[0] == "pyvo"


def _from_pyvo(target: Any, protocol: Protocol | None) -> list[Service]:
    """Services of a pyvo DAL service, registry resource or registry result list."""
    kind = type(target).__name__
    if kind in _PYVO_SERVICES:
        return [Service(protocol=_PYVO_SERVICES[kind], access_url=str(target.baseurl))]
    if kind == "RegistryResults":
        return [service for resource in target for service in _from_pyvo(resource, protocol)]
    if kind == "RegistryResource":
        return _pyvo_resource(target, protocol)
    raise UsageError(f"cannot use pyvo's {kind} as a fan-out target")


def _pyvo_resource(resource: Any, protocol: Protocol | None) -> list[Service]:
    found = []
    for interface in resource.list_interfaces():
        standard_id = (interface.standard_id or "").lower()
        if not standard_id or not interface.is_standard:
            continue
        speaks = _protocol_of(standard_id)
        if speaks is None or (protocol is not None and speaks is not protocol):
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


def _protocol_of(standard_id: str) -> Protocol | None:
    if standard_id.startswith((_STD + "sia#query-2", _STD + "sia2")):
        return Protocol.SIA2
    return {
        _STD + "conesearch": Protocol.SCS,
        _STD + "sia": Protocol.SIA,
        _STD + "ssa": Protocol.SSA,
        _STD + "tap": Protocol.TAP,
    }.get(standard_id.split("#", 1)[0])
