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
  database, is damaged, holds another application's tables, or has another schema version raises
  :class:`~maru.errors.CacheError` naming the file and saying to delete or move it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

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
    "CREATE TABLE maru_cache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT INTO maru_cache_meta (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
    "CREATE TABLE maru_cache ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " created_at REAL NOT NULL,"
    " expires_at REAL)",
    "CREATE INDEX maru_cache_expires ON maru_cache (expires_at) WHERE expires_at IS NOT NULL",
)


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot)."""


# Every connection any SQLiteCache opened in this process, and how many forks deep we are. After a
# fork the child must not use or close what it inherited: it keeps them referenced forever instead.
_connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
_inherited: list[_Connection] = []
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1
    _inherited.extend(_connections)
    _connections.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
        if str(path) == ":memory:" or str(path).startswith("file::memory:"):
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
        self._local = threading.local()
        self._opened: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._next_purge = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the folder of the SQLite cache {self.path}: {exc}; "
                "choose a writable path"
            ) from exc
        self._connect()

    # ----------------------------------------------------------------- connections
    def _conn(self) -> sqlite3.Connection:
        held = getattr(self._local, "held", None)
        if held is not None and held[1] == _fork_generation:
            return held[0]
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,  # autocommit: each statement is its own transaction
                check_same_thread=False,  # used by one thread only; close() may come from another
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._retry_busy(lambda: self._set_wal(conn))
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough for a cache, much faster
            self._retry_busy(lambda: self._check_schema(conn))
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise
        assert isinstance(conn, _Connection)
        _connections.add(conn)
        self._opened.add(conn)
        self._local.held = (conn, _fork_generation)
        return conn

    def _retry_busy(self, step: Callable[[], object]) -> None:
        """Run ``step``, retrying for up to ``timeout`` seconds while the database is busy.

        SQLite answers some requests with SQLITE_BUSY at once instead of calling the busy handler
        (switching the journal mode while another process opens the file, upgrading a read to a
        write), so opening a new file from several processes at once needs this loop."""
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @staticmethod
    def _set_wal(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        version = self._schema_version(conn)
        if version is None:
            # One process creates the schema; the others wait for its lock, then see it.
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._schema_version(conn)
                if version is None:
                    tables = conn.execute(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                    ).fetchone()[0]
                    if tables:
                        raise CacheError(
                            f"{self.path} is a SQLite database of something else (it has tables but "
                            "no maru cache schema); point SQLiteCache at another file, or delete or "
                            "move this one if it is expendable"
                        )
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    version = SCHEMA_VERSION
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if version != SCHEMA_VERSION:
            raise CacheError(
                f"the SQLite cache {self.path} has schema version {version}, this maru uses "
                f"{SCHEMA_VERSION}; delete or move the file and maru will create a new cache there"
            )

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute(
                "SELECT value FROM maru_cache_meta WHERE name = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        try:
            return int(row[0]) if row is not None else -1
        except ValueError:
            return -1

    def _error(self, exc: sqlite3.Error) -> CacheError:
        text = str(exc)
        if (
            not isinstance(exc, sqlite3.OperationalError)
            or "malformed" in text
            or "not a database" in text
        ):
            return CacheError(
                f"the SQLite cache file {self.path} is corrupt or not a SQLite database ({text}); "
                "delete or move it and maru will create a new, empty cache there"
            )
        if "locked" in text or "busy" in text:
            return CacheError(
                f"the SQLite cache {self.path} stayed locked by another writer for more than "
                f"{self.timeout:g} s ({text}); raise SQLiteCache(timeout=...) or find the process "
                "holding it"
            )
        return CacheError(
            f"cannot use the SQLite cache file {self.path} ({text}); check that the path is a "
            "writable file, or delete or move it"
        )

    def close(self) -> None:
        """Close the connections this cache opened in this process (in any thread). The cache
        stays usable: the next call opens a new connection."""
        self._local = threading.local()
        for conn in list(self._opened):
            self._opened.discard(conn)
            if conn in _connections:  # not inherited over a fork
                _connections.discard(conn)
                conn.close()

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
        now = self._clock()
        expires_at = None if self.ttl is None else now + self.ttl
        conn = self._conn()
        try:
            conn.execute(_UPSERT, (request.key, response.to_json(), now, expires_at))
            if now >= self._next_purge:
                self._next_purge = now + PURGE_INTERVAL
                conn.execute(_PURGE, (now,))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

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
