"""The transport interface: one request in, one complete response (or a vosweep error) out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vosweep.config import Timeouts
    from vosweep.protocols.base import Request, Response

__all__ = ["Transport"]


class Transport(Protocol):
    """Sends requests. Raises only `vosweep.errors.ServiceError` subclasses for remote trouble.

    A transport returns responses of any HTTP status; judging them is the protocol's job.
    Bodies of error statuses may be cut short (only their first bytes carry a message).
    """

    async def send(self, request: Request, *, timeouts: Timeouts, max_bytes: int) -> Response:
        """Send *request* and read the whole body, within *timeouts* and *max_bytes*."""
        ...

    async def aclose(self) -> None:
        """Release connections; the transport is unusable afterwards."""
        ...
