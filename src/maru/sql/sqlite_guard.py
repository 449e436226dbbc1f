"""A SQLite connection that cannot write, reach other files or run away, whatever SQL reaches it.

The validator is the first lock; this is the second, for SQL that gets past it. ``mode=ro`` and
``query_only`` stop writes to the database file, but ``PRAGMA query_only = OFF`` was accepted, and
after it ``ATTACH`` and ``VACUUM INTO`` wrote new files. So an authorizer refuses every action but
reading (PRAGMAs only to read the schema, calls only to allow-listed functions), and limits bound
what one step can build: a value's length, the expression depth, attached databases (none).
The deadline is a timer that interrupts the connection from another thread, since a progress
handler only runs between batches of steps, and one step can take seconds.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from types import TracebackType

from .validate import allowed_functions

__all__ = ["MAX_VALUE_BYTES", "SQLITE_FUNCTIONS", "interrupt_after", "open_guarded"]

MAX_VALUE_BYTES = 1_000_000
"""Longest string or blob one query may build or read (SQLITE_LIMIT_LENGTH). Searching functions
cost up to the square of it in one step; at 1 MB that is well under the timeout's margin."""

SQLITE_FUNCTIONS = allowed_functions("sqlite") | frozenset(
    {"ifnull", "iif", "substr", "ltrim", "rtrim", "char", "like", "glob", "ceiling", "log10", "log2"}
)
"""What the authorizer lets run: the validator's allow-list plus SQLite's own spellings of it
(sqlglot writes ``iif`` for ``if``; ``LIKE`` is the function ``like`` to SQLite)."""

_SCHEMA_PRAGMAS = frozenset({"table_info", "table_xinfo", "foreign_key_list", "index_list", "index_info", "index_xinfo"})
"""Read the schema of the table they name (SQLAlchemy's reflection uses them)."""

_READABLE_SETTINGS = frozenset({"read_uncommitted", "query_only", "foreign_keys", "encoding", "user_version"})
"""Settings that may be read (never set: a PRAGMA with a value is refused)."""

_READING_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_TRANSACTION})


def _limits(max_value_bytes: int) -> dict[int, int]:
    return {
        sqlite3.SQLITE_LIMIT_LENGTH: max_value_bytes,
        sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
        sqlite3.SQLITE_LIMIT_ATTACHED: 0,
        sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 250,
        sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 200,
        sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 50,
        sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 32,
        sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,
    }


def open_guarded(path: str | Path, *, max_value_bytes: int = MAX_VALUE_BYTES) -> sqlite3.Connection:
    """``path`` opened read-only, with ``query_only`` on, the limits set and the authorizer installed."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    for category, limit in _limits(max_value_bytes).items():
        conn.setlimit(category, limit)
    conn.set_authorizer(_authorize)
    return conn


def _authorize(action: int, first: str | None, second: str | None, _db: str | None, _source: str | None) -> int:
    """SQLITE_OK for reading; SQLITE_DENY for everything else (SQLite then fails the statement
    with "not authorized", before it runs)."""
    if action in _READING_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_OK if (second or "").lower() in SQLITE_FUNCTIONS else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = (first or "").lower()
        if name in _SCHEMA_PRAGMAS or (name in _READABLE_SETTINGS and second is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


class interrupt_after:
    """Interrupt ``conn``'s running statement when ``timeout_s`` has passed.

    ``sqlite3.Connection.interrupt`` is safe to call from another thread; SQLite stops at the next
    step boundary, and the limits keep every step short. A late interrupt after the query finished
    is harmless: SQLite clears it when the next statement starts on an idle connection.
    """

    def __init__(self, conn: sqlite3.Connection, timeout_s: float) -> None:
        self._timer = threading.Timer(timeout_s, conn.interrupt)
        self._timer.daemon = True

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._timer.cancel()
