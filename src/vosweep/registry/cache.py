"""A small process-wide TTL cache for registry answers.

Process-wide, not per engine: a notebook cell that opens ``async with Engine()`` and
discovers services is re-run with a new engine each time, and should not query the
registry again for the same answer. Bounded in entries; thread-safe because
`vosweep.fanout_sync` runs engines on event loops in other threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["SHARED_CACHE", "TTLCache", "clear_cache"]


class TTLCache:
    """Values that expire *ttl* seconds after they were stored (least recently used go first)."""

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The live value stored under *key*, or None."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: Any, ttl: float) -> None:
        """Store *value* for *ttl* seconds (a ttl of 0 stores nothing)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


#: The cache every engine's registry client shares.
SHARED_CACHE = TTLCache()


def clear_cache() -> None:
    """Forget every cached registry answer (the next search queries the registry again)."""
    SHARED_CACHE.clear()
