"""``RedisCache``: responses in Redis, shared by every process and machine that reaches it.

A cache must never be the reason a call fails or stalls. So:

- Socket and connect timeouts are short (``timeout``, 0.5 s) and redis-py's own retries are off:
  a refused connection costs one failed connect, not redis-py's default three retries with backoff.
- When Redis cannot be reached the call goes on uncached: ``lookup`` returns ``None`` and ``update``
  does nothing, and **one** :class:`CacheUnavailableWarning` is emitted per outage (the next one
  comes only after Redis has answered again). For ``retry_after`` seconds after a failure the cache
  does not even try, so a down Redis costs nothing per call.
- ``on_error="raise"`` turns the same conditions into :class:`~maru.errors.CacheError`.

Values are ``CachedResponse.to_json()`` under ``prefix + request.key`` (``SET … PX ttl``), so Redis
expires them itself. ``clear()`` deletes only keys under the prefix (``SCAN`` + ``UNLINK``), never the
whole database. The async twins use ``redis.asyncio`` natively (one client per event loop) unless a
ready-made sync ``client`` was passed in, in which case they run the sync methods on the shared pool.

The ``redis`` package (``pip install 'maru[cache]'``) is imported when a ``RedisCache`` is built.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ..errors import CacheError
from .base import BaseCache, CachedResponse, CacheRequest

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["CacheUnavailableWarning", "RedisCache"]

log = logging.getLogger("maru.cache")


class CacheUnavailableWarning(UserWarning):
    """A cache server could not be reached; calls go on without the cache until it answers."""


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError(
            "RedisCache needs the 'redis' package: pip install 'maru[cache]' (or pip install redis)"
        ) from exc
    return redis


class RedisCache(BaseCache):
    """A response cache in Redis at ``url`` (``redis://[:password@]host:port/db``, ``rediss://``
    for TLS, ``unix:///path.sock``).

    Args:
        prefix: put before every key, so several caches (or apps) can share a database.
        ttl: seconds until an entry expires (``None``: never).
        on_error: ``"warn"`` (default) — calls go on uncached and one
            :class:`CacheUnavailableWarning` is emitted per outage; ``"raise"`` — a
            :class:`~maru.errors.CacheError`.
        client: a ready ``redis.Redis`` to use instead of building one from ``url`` (its own
            timeouts and retries apply).
        timeout: socket connect/read timeout in seconds.
        retry_after: seconds to stop trying after a failure.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "maru:cache:",
        ttl: float | None = None,
        on_error: Literal["warn", "raise"] = "warn",
        client: redis.Redis | None = None,
        timeout: float = 0.5,
        retry_after: float = 2.0,
    ) -> None:
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
        if ttl is not None and ttl < 0.001:
            raise ValueError(f"RedisCache ttl must be at least 0.001 seconds or None, got {ttl}")
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.on_error = on_error
        self.timeout = timeout
        self.retry_after = retry_after
        self._redis = _import_redis()
        self._own_client = client is None
        self._client: redis.Redis = client if client is not None else self._build_client()
        self._aclient: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None
        self._px = None if ttl is None else max(1, round(ttl * 1000))
        self._state_lock = threading.Lock()
        self._down = False  # inside an outage (its warning already emitted)
        self._skip_until = 0.0  # monotonic time before which we do not try
        self._last_error: BaseException | None = None
        self._errors: tuple[type[BaseException], ...] = (self._redis.RedisError, OSError)

    # ----------------------------------------------------------------- clients
    def _client_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry_on_error": [],
        }

    def _build_client(self) -> redis.Redis:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return self._redis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), **self._client_options()
        )

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        held = self._aclient
        if held is None or held[0] is not loop:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = redis.asyncio.Redis.from_url(
                self.url, retry=Retry(NoBackoff(), 0), **self._client_options()
            )
            held = self._aclient = (loop, client)
        return held[1]

    @property
    def client(self) -> redis.Redis:
        """The sync ``redis.Redis`` client in use."""
        return self._client

    # ----------------------------------------------------------------- outage handling
    def _skipping(self) -> bool:
        """True while a recent failure says not to try; raises instead under ``on_error="raise"``."""
        if not self._down or time.monotonic() >= self._skip_until:
            return False
        if self.on_error == "raise":
            raise CacheError(self._describe(self._last_error)) from self._last_error
        return True

    def _describe(self, exc: BaseException | None) -> str:
        return (
            f"the Redis cache at {_redacted(self.url)} is unavailable ({exc}); check that Redis "
            "is running and reachable there"
        )

    def _failed(self, exc: BaseException) -> None:
        with self._state_lock:
            first = not self._down
            self._down = True
            self._last_error = exc
            self._skip_until = time.monotonic() + self.retry_after
        if self.on_error == "raise":
            raise CacheError(self._describe(exc)) from exc
        if first:
            message = self._describe(exc) + "; calls go on without the cache until it answers again"
            log.warning("%s", message)
            warnings.warn(message, CacheUnavailableWarning, stacklevel=4)

    def _recovered(self) -> None:
        with self._state_lock:
            if not self._down:
                return
            self._down = False
            self._last_error = None
        log.info("the Redis cache at %s answers again", _redacted(self.url))

    def _decode(self, raw: bytes | str | None) -> CachedResponse | None:
        if raw is None:
            return None
        try:
            return CachedResponse.from_json(raw)
        except (ValueError, KeyError, TypeError, AssertionError):
            return None  # not something this version wrote: a miss, overwritten by the next update

    # ----------------------------------------------------------------- sync
    def lookup(self, request: CacheRequest) -> CachedResponse | None:
        if self._down and self._skipping():
            return None
        try:
            raw = self._client.get(self.prefix + request.key)
        except self._errors as exc:
            self._failed(exc)
            return None
        if self._down:
            self._recovered()
        return self._decode(raw)

    def update(self, request: CacheRequest, response: CachedResponse) -> None:
        if self._down and self._skipping():
            return
        try:
            self._client.set(self.prefix + request.key, response.to_json(), px=self._px)
        except self._errors as exc:
            self._failed(exc)
            return
        if self._down:
            self._recovered()

    def clear(self) -> None:
        """Delete every key under ``prefix`` (and nothing else)."""
        if self._down and self._skipping():
            return
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
        except self._errors as exc:
            self._failed(exc)
            return
        if self._down:
            self._recovered()

    # ----------------------------------------------------------------- async
    async def alookup(self, request: CacheRequest) -> CachedResponse | None:
        if not self._own_client:
            return await super().alookup(request)
        if self._down and self._skipping():
            return None
        try:
            raw = await self._async_client().get(self.prefix + request.key)
        except self._errors as exc:
            self._failed(exc)
            return None
        if self._down:
            self._recovered()
        return self._decode(raw)

    async def aupdate(self, request: CacheRequest, response: CachedResponse) -> None:
        if not self._own_client:
            return await super().aupdate(request, response)
        if self._down and self._skipping():
            return
        try:
            await self._async_client().set(
                self.prefix + request.key, response.to_json(), px=self._px
            )
        except self._errors as exc:
            self._failed(exc)
            return
        if self._down:
            self._recovered()

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the connections this cache opened (a client passed in is left to its owner)."""
        if self._own_client:
            self._client.close()
        self._aclient = None

    async def aclose(self) -> None:
        held, self._aclient = self._aclient, None
        if held is not None and held[0] is asyncio.get_running_loop():
            await held[1].aclose()
        self.close()

    def __repr__(self) -> str:
        return f"RedisCache({_redacted(self.url)!r}, prefix={self.prefix!r}, ttl={self.ttl})"
