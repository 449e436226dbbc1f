"""Response caches for chat models: exact (memory, SQLite, Redis) and semantic.

The backends are loaded on first use, so ``import maru.cache`` costs only the interface, and
naming ``RedisCache`` or ``SemanticCache`` imports neither redis nor numpy (building one does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _lazy
from .base import BaseCache, CachedResponse, CacheRequest, get_cache, set_cache
from .key import cache_key

if TYPE_CHECKING:
    from .guard import compatible
    from .memory import InMemoryCache
    from .redis import CacheUnavailableWarning, RedisCache
    from .semantic import SemanticCache, UnguardedLanguageWarning
    from .sqlite import SQLiteCache

__all__ = [
    "BaseCache",
    "CacheRequest",
    "CacheUnavailableWarning",
    "CachedResponse",
    "InMemoryCache",
    "RedisCache",
    "SQLiteCache",
    "SemanticCache",
    "UnguardedLanguageWarning",
    "cache_key",
    "compatible",
    "get_cache",
    "set_cache",
]

_LAZY = {
    "InMemoryCache": "memory",
    "SQLiteCache": "sqlite",
    "RedisCache": "redis",
    "CacheUnavailableWarning": "redis",
    "SemanticCache": "semantic",
    "UnguardedLanguageWarning": "semantic",
    "compatible": "guard",
}


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted(__all__)
