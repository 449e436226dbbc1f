"""``SQLiteCache``: responses in a SQLite file, shared by threads and processes.

- **WAL mode** lets readers run while one writer writes, across processes; ``busy_timeout`` makes a
  writer wait for the lock instead of failing. Each write is one statement (its own transaction).
- **One connection per thread** (``threading.local``): a SQLite connection must not be used by two
  threads at once, and a lock around one shared connection would serialise every lookup. A process
  forked after the cache was opened gets fresh connections too; the inherited ones are left alone
  (never closed in the child), as SQLite's documentation requires.
- **A lookup is one indexed SELECT** whose prepared statement the ``sqlite3`` module keeps in its
  per-connection statement cache, then ``CachedResponse.from_json``.
- **TTL**: each row carries ``expires_at`` (wall-clock seconds, so every process agrees). Expired rows
  are never returned; a lookup that meets one deletes it, and writes purge all expired rows at most
  once a minute.
- **Schema**: table ``maru_cache_meta`` holds ``schema_version``. A file that is not a SQLite
  database, holds another application's tables, or has another schema version raises
  :class:`~maru.errors.CacheError` naming the file and saying to delete or move it.
- **Damage**: a cache file found empty (0 bytes) or corrupt, when opened or when used, is kept
  aside as ``<name>.damaged-<time>`` with one warning (:class:`~maru._sqlite.DamagedFileWarning`)
  and the cache starts again, empty, in a new file: a lookup that met the damage is a miss.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .. import _sqlite
from ..errors import CacheError
from .base import BaseCache, CachedResponse, CacheRequest

__all__ = ["SCHEMA_VERSION", "SQLiteCache"]

SCHEMA_VERSION = 1
PURGE_INTERVAL = 60.0
"""Seconds between sweeps of expired rows (done by a write, in the writing process)."""

_LOOKUP = "SELECT value, expires_at FROM maru_cache WHERE key = ?"
_UPSERT = (
    "INSERT OR REPLACE INTO maru_cache (key, value, created_at, expires_at) VALUES (?, ?, ?, ?)"
)
_DELETE_EXPIRED_KEY = "DELETE FROM maru_cache WHERE key = ? AND expires_at <= ?"
_PURGE = "DELETE FROM maru_cache WHERE expires_at IS NOT NULL AND expires_at <= ?"
_SCHEMA = (
    "CREATE TABLE maru_cache ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " created_at REAL NOT NULL,"
    " expires_at REAL)",
    "CREATE INDEX maru_cache_expires ON maru_cache (expires_at) WHERE expires_at IS NOT NULL",
)


class SQLiteCache(BaseCache):
    """A response cache in the SQLite file at ``path`` (parent folders are created).

    ``ttl`` seconds after it was stored an entry is no longer returned (``None``: never expires).
    ``timeout`` is how long a write waits for another writer's lock before giving up. ``clock``
    (wall-clock seconds) is there for tests.

    The file is opened, checked and, when new, initialised by the constructor, so a corrupt or
    foreign file fails there with a :class:`~maru.errors.CacheError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ".maru/cache.sqlite",
        ttl: float | None = None,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if _sqlite.is_memory_path(path):
            raise ValueError(
                "SQLiteCache needs a file (every thread opens its own connection, and in-memory "
                "databases are private to one connection); use InMemoryCache for a cache in memory"
            )
        if ttl is not None and ttl <= 0:
            raise ValueError(
                f"SQLiteCache ttl must be a positive number of seconds or None, got {ttl}"
            )
        self.path = Path(path)
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._next_purge = 0.0
        _sqlite.make_parent_folder(self.path, CacheError, "the SQLite cache")
        self._connections = _sqlite.ThreadConnections(
            self.path, timeout=timeout, setup=self._check_schema, on_error=self._error,
            damaged="the SQLite cache",
        )
        self._connections.open()

    # ----------------------------------------------------------------- connections
    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        _sqlite.require_schema(
            conn, meta_table="maru_cache_meta", version=SCHEMA_VERSION, statements=_SCHEMA,
            error=CacheError, path=self.path, kind="maru cache schema",
            elsewhere="point SQLiteCache at another file, or delete or move this one if it is expendable",
        )

    def _error(self, exc: sqlite3.Error) -> CacheError:
        return _sqlite.error_for(
            exc, CacheError, what=f"the SQLite cache file {self.path}", timeout=self.timeout,
            timeout_option="SQLiteCache(timeout=...)",
            if_corrupt="delete or move it and maru will create a new, empty cache there",
            if_other="check that the path is a writable file, or delete or move it",
        )

    def close(self) -> None:
        """Close the connections this cache opened in this process (in any thread). The cache
        stays usable: the next call opens a new connection."""
        self._connections.close()

    def __enter__(self) -> SQLiteCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the cache
    def lookup(self, request: CacheRequest) -> CachedResponse | None:
        conn = self._conn()
        try:
            row = conn.execute(_LOOKUP, (request.key,)).fetchone()
        except sqlite3.Error as exc:
            if self._connections.recover(exc):  # a damaged file is set aside, loudly: a miss
                return None
            raise self._error(exc) from exc
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None:
            now = self._clock()
            if expires_at <= now:
                # Locked by a writer? Then a later write's purge removes it.
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute(_DELETE_EXPIRED_KEY, (request.key, now))
                return None
        try:
            return CachedResponse.from_json(value)
        except (ValueError, KeyError, TypeError, AssertionError):
            # A row this version cannot read (hand-edited, or damaged): a miss, and the next
            # update of the key overwrites it.
            return None

    def update(self, request: CacheRequest, response: CachedResponse) -> None:
        try:  # a damaged file is set aside, loudly, and the entry goes to a new one
            self._connections.run(lambda: self._store(request, response))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _store(self, request: CacheRequest, response: CachedResponse) -> None:
        now = self._clock()
        expires_at = None if self.ttl is None else now + self.ttl
        conn = self._conn()
        conn.execute(_UPSERT, (request.key, response.to_json(), now, expires_at))
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL
            conn.execute(_PURGE, (now,))

    def clear(self) -> None:
        try:
            self._conn().execute("DELETE FROM maru_cache")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def __len__(self) -> int:
        """Entries stored that have not expired."""
        row = (
            self._conn()
            .execute(
                "SELECT count(*) FROM maru_cache WHERE expires_at IS NULL OR expires_at > ?",
                (self._clock(),),
            )
            .fetchone()
        )
        return int(row[0])

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r}, ttl={self.ttl})"
