"""Sans-I/O protocol code: build requests, parse responses. Never awaits, never imports aiohttp."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vosweep.protocols import scs
from vosweep.protocols.base import Parsed, Request, Response
from vosweep.services import Protocol, Service

__all__ = ["PROTOCOLS", "ProtocolSpec"]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """How one protocol builds requests and reads answers.

    Attributes:
        name: The protocol.
        build: ``(service, query) -> Request``; raises `UsageError` if the query does not fit.
        parse: ``(response, max_bytes=...) -> Parsed``; raises `ServiceError` subclasses.
    """

    name: Protocol
    build: Callable[[Service, object], Request]
    parse: Callable[..., Parsed]

    def parse_response(self, response: Response, max_bytes: int) -> Parsed:
        """Parse *response* (runs in a worker thread)."""
        return self.parse(response, max_bytes=max_bytes)


PROTOCOLS: dict[Protocol, ProtocolSpec] = {
    Protocol.SCS: ProtocolSpec(Protocol.SCS, scs.build, scs.parse),
}
