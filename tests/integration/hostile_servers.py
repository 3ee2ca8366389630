"""Servers for the hostile-service tests: bare sockets for protocol-level abuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handle: Handler, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """A bare asyncio socket server for protocol-level abuse; yields its base URL."""
    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()
