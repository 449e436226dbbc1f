"""Response caches for chat models: exact (memory, SQLite, Redis) and semantic."""

from .base import BaseCache, CachedResponse, CacheRequest, get_cache, set_cache
from .key import cache_key

__all__ = ["BaseCache", "CacheRequest", "CachedResponse", "cache_key", "get_cache", "set_cache"]
