"""A transport that answers from a function: scheduler unit tests need no sockets."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from vosweep.errors import ResponseTooLarge

if TYPE_CHECKING:
    from vosweep.config import Timeouts
    from vosweep.protocols.base import Request, Response

__all__ = ["MockTransport"]

Handler = Callable[["Request"], "Response | Awaitable[Response]"]


class MockTransport:
    """Calls *handler* (sync or async) for every request and returns its response.

    The handler may raise `vosweep.errors.ServiceError` subclasses to simulate failures.
    ``requests`` records every request sent, in order.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[Request] = []
        self.closed = False

    async def send(self, request: Request, *, timeouts: Timeouts, max_bytes: int) -> Response:
        """Record *request* and return the handler's answer."""
        del timeouts
        self.requests.append(request)
        result = self._handler(request)
        response = await result if inspect.isawaitable(result) else result
        if len(response.body) > max_bytes:
            raise ResponseTooLarge(f"response larger than {max_bytes} bytes", url=request.url)
        return response

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True
