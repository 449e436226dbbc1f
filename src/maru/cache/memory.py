"""``InMemoryCache``: a bounded, thread-safe LRU of responses in this process.

Entries are the :class:`~maru.cache.CachedResponse` objects themselves — nothing is serialised, so
a hit is a dict lookup under an uncontended lock (well under a microsecond). The flip side: a
response handed out by :meth:`InMemoryCache.lookup` is the stored object, shared by every hit.
Callers must treat it as read-only and copy before changing it (the chat-model integration does).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .base import BaseCache, CachedResponse, CacheRequest

__all__ = ["InMemoryCache"]


class InMemoryCache(BaseCache):
    """A least-recently-used cache of at most ``maxsize`` responses, optionally expiring ``ttl``
    seconds after they were stored.

    A lookup that hits makes the entry the most recently used; storing into a full cache evicts
    the least recently used one. ``clock`` (monotonic seconds) is there for tests.
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"InMemoryCache maxsize must be at least 1, got {maxsize}")
        if ttl is not None and ttl <= 0:
            raise ValueError(
                f"InMemoryCache ttl must be a positive number of seconds or None, got {ttl}"
            )
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        # key -> (response, expires_at); expires_at is None without a ttl.
        self._data: OrderedDict[str, tuple[CachedResponse, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, request: CacheRequest) -> CachedResponse | None:
        key = request.key
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[1] is not None and entry[1] <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry[0]

    def update(self, request: CacheRequest, response: CachedResponse) -> None:
        expires_at = None if self.ttl is None else self._clock() + self.ttl
        key = request.key
        data = self._data
        with self._lock:
            data[key] = (response, expires_at)
            data.move_to_end(key)
            while len(data) > self.maxsize:
                data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    # Nothing here blocks, so the async twins skip the thread hop of the default implementation.
    async def alookup(self, request: CacheRequest) -> CachedResponse | None:
        return self.lookup(request)

    async def aupdate(self, request: CacheRequest, response: CachedResponse) -> None:
        self.update(request, response)

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._data)

    def __repr__(self) -> str:
        return f"InMemoryCache(maxsize={self.maxsize}, ttl={self.ttl}, size={len(self._data)})"
