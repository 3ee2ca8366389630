"""Sans-I/O protocol code: build requests, parse responses. Never awaits, never imports aiohttp."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vosweep.protocols import links, scs, sia, ssa, tap
from vosweep.protocols.base import Parsed, Request, Response
from vosweep.services import Protocol, Service

if TYPE_CHECKING:
    from vosweep.config import EngineConfig
    from vosweep.protocols.conversation import Conversation

__all__ = ["PROTOCOLS", "ProtocolSpec"]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """How one protocol builds requests and reads answers.

    Attributes:
        name: The protocol.
        build: ``(service, query) -> Request``; raises `UsageError` if the query does not fit.
        parse: ``(response, max_bytes=...) -> Parsed``; raises `ServiceError` subclasses.
        converse: For protocols of several requests (TAP: capabilities, UWS jobs,
            upload batches), ``(service, query, config) -> Conversation``, which the
            scheduler drives instead of sending ``build``'s request (that one then only
            checks the query and names the URL in reports).
    """

    name: Protocol
    build: Callable[[Service, object], Request]
    parse: Callable[..., Parsed]
    converse: Callable[[Service, object, EngineConfig], Conversation] | None = None

    def parse_response(self, response: Response, max_bytes: int) -> Parsed:
        """Parse *response* (runs in a worker thread)."""
        return self.parse(response, max_bytes=max_bytes)


PROTOCOLS: dict[Protocol, ProtocolSpec] = {
    Protocol.SCS: ProtocolSpec(Protocol.SCS, scs.build, scs.parse),
    Protocol.SIA: ProtocolSpec(Protocol.SIA, sia.build_sia1, sia.parse),
    Protocol.SIA2: ProtocolSpec(Protocol.SIA2, sia.build_sia2, sia.parse),
    Protocol.SSA: ProtocolSpec(Protocol.SSA, ssa.build, ssa.parse),
    Protocol.TAP: ProtocolSpec(Protocol.TAP, tap.build, tap.parse_sync, tap.converse),
    Protocol.DATALINK: ProtocolSpec(
        Protocol.DATALINK, links.build, links.parse_results, links.converse
    ),
}
