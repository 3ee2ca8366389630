"""What a fan-out targets: one VO service endpoint and the protocol it speaks."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from vosweep.errors import UsageError

__all__ = ["Protocol", "Service", "protocol_of_standard"]


class Protocol(StrEnum):
    """The IVOA data-access protocols vosweep speaks."""

    SCS = "scs"
    SIA = "sia"
    SIA2 = "sia2"
    SSA = "ssa"
    TAP = "tap"
    #: DataLink {links} endpoints (found in results, not in the registry).
    DATALINK = "datalink"


#: Standard identifiers of each protocol's capability, as found in the registry.
STANDARD_IDS: dict[Protocol, str] = {
    Protocol.SCS: "ivo://ivoa.net/std/conesearch",
    Protocol.SIA: "ivo://ivoa.net/std/sia",
    Protocol.SIA2: "ivo://ivoa.net/std/sia#query-2.0",
    Protocol.SSA: "ivo://ivoa.net/std/ssa",
    Protocol.TAP: "ivo://ivoa.net/std/tap",
}
_STD = "ivo://ivoa.net/std/"
#: SIA2 shares SIA1's standard id up to the fragment: these prefixes tell it apart
#: (``sia2`` is how pyvo rewrites them).
_SIA2_PREFIXES = (_STD + "sia#query-2", _STD + "sia#query-aux-2", _STD + "sia2")
_PROTOCOL_OF_STANDARD = {
    STANDARD_IDS[protocol]: protocol
    for protocol in (Protocol.SCS, Protocol.SIA, Protocol.SSA, Protocol.TAP)
}


def protocol_of_standard(standard_id: str | None) -> Protocol | None:
    """The protocol a capability's standard id speaks, or None if vosweep does not query it.

    Fragments are ignored (``tap#aux`` is TAP), except that SIA2 is kept apart from SIA1.
    """
    if not standard_id:
        return None
    standard_id = standard_id.lower()
    if standard_id.startswith(_SIA2_PREFIXES):
        return Protocol.SIA2
    return _PROTOCOL_OF_STANDARD.get(standard_id.split("#", 1)[0])


class Service(BaseModel):
    """One service endpoint to query.

    Services are compared and hashed by value, so a fan-out can de-duplicate them by
    access URL. The host name (not host:port) keys the politeness limit and the circuit
    breaker, because many VO services share one host (VizieR serves thousands).

    Attributes:
        protocol: The protocol the endpoint speaks.
        access_url: The endpoint's base URL; existing query parameters are kept.
        ivoid: The registry identifier of the resource, when known.
        name: A short human name (the registry's short name), when known.
        title: The resource title, when known.
        mirrors: Alternative access URLs for the same interface (RegTAP 1.1 ``mirror_url``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol
    access_url: str
    ivoid: str | None = None
    name: str | None = None
    title: str | None = None
    mirrors: tuple[str, ...] = ()

    @field_validator("access_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"access URL must be an absolute http(s) URL, got {value!r}")
        return value

    @field_validator("mirrors")
    @classmethod
    def _check_mirrors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            cls._check_url(url)
        return value

    @cached_property
    def host(self) -> str:
        """The lower-cased host name of the access URL (no port).

        Cached: the scheduler asks for it several times per request.
        """
        return (urlsplit(self.access_url).hostname or "").lower()

    @property
    def label(self) -> str:
        """The most human name available: short name, then ivoid, then access URL."""
        return self.name or self.ivoid or self.access_url

    @classmethod
    def scs(cls, access_url: str, **kwargs: Any) -> Service:
        """A Simple Cone Search endpoint."""
        return cls(protocol=Protocol.SCS, access_url=access_url, **kwargs)

    @classmethod
    def sia(cls, access_url: str, **kwargs: Any) -> Service:
        """A Simple Image Access (v1) endpoint."""
        return cls(protocol=Protocol.SIA, access_url=access_url, **kwargs)

    @classmethod
    def sia2(cls, access_url: str, **kwargs: Any) -> Service:
        """A Simple Image Access v2 endpoint."""
        return cls(protocol=Protocol.SIA2, access_url=access_url, **kwargs)

    @classmethod
    def ssa(cls, access_url: str, **kwargs: Any) -> Service:
        """A Simple Spectral Access endpoint."""
        return cls(protocol=Protocol.SSA, access_url=access_url, **kwargs)

    @classmethod
    def datalink(cls, access_url: str, **kwargs: Any) -> Service:
        """A DataLink ``{links}`` endpoint (usually with its ``ID`` in the URL)."""
        return cls(protocol=Protocol.DATALINK, access_url=access_url, **kwargs)

    @classmethod
    def tap(cls, access_url: str, **kwargs: Any) -> Service:
        """A Table Access Protocol endpoint (the base URL, without ``/sync``)."""
        return cls(protocol=Protocol.TAP, access_url=access_url, **kwargs)


def coerce_service(target: object, default_protocol: Protocol | None = None) -> Service:
    """Turn what a user passed as a fan-out target into a `Service`.

    Accepts `Service` objects and plain URL strings (which need *default_protocol*).
    """
    if isinstance(target, Service):
        return target
    if isinstance(target, str):
        if default_protocol is None:
            raise UsageError(
                f"cannot tell which protocol {target!r} speaks: pass vosweep.Service objects "
                "(e.g. Service.scs(url)) or a query that implies the protocol"
            )
        try:
            return Service(protocol=default_protocol, access_url=target)
        except ValueError as exc:
            raise UsageError(f"invalid service URL {target!r}: {exc}") from None
    raise UsageError(
        f"cannot use {type(target).__name__} as a fan-out target; expected vosweep.Service or a URL"
    )
