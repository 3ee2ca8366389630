"""Fetch: the only package that knows aiohttp. Above it there are only vosweep errors."""

from vosweep.transport.base import Transport
from vosweep.transport.http import AiohttpTransport, user_agent
from vosweep.transport.mock import MockTransport

__all__ = ["AiohttpTransport", "MockTransport", "Transport", "user_agent"]
