"""VOSI capabilities, fetched once per service and shared by every request to it.

A fan-out of many TAP queries to one service (upload batches, several sweeps on one
engine) must not fetch its capabilities each time; and concurrent jobs for one service
wait for the single fetch in flight rather than each sending their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from vosweep.protocols.vosi import ServiceCapabilities

__all__ = ["CapabilityCache"]

Fetch = Callable[[], Awaitable["ServiceCapabilities | None"]]


class CapabilityCache:
    """Capabilities by service base URL, for *ttl* seconds (a failed fetch is remembered too)."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ServiceCapabilities | None]] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def peek(self, base_url: str) -> tuple[bool, ServiceCapabilities | None]:
        """``(known, capabilities)`` without fetching."""
        entry = self._entries.get(base_url)
        if entry is None or entry[0] < anyio.current_time():
            return False, None
        return True, entry[1]

    async def get(self, base_url: str, fetch: Fetch) -> ServiceCapabilities | None:
        """The cached capabilities of *base_url*, calling *fetch* when absent or stale."""
        known, value = self.peek(base_url)
        if known:
            return value
        lock = self._locks.setdefault(base_url, anyio.Lock())
        async with lock:
            known, value = self.peek(base_url)
            if known:
                return value
            value = await fetch()
            self._entries[base_url] = (anyio.current_time() + self._ttl, value)
            return value

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
