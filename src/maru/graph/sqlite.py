"""``SQLiteSaver``: a graph's checkpoints in one SQLite file (WAL), one row per superstep.

A row holds the step's updates, not the state (see :mod:`maru.graph.checkpoint`), so a thread of N
steps takes O(N) bytes. Each ``put`` is one ``INSERT``, committed before the run moves on; WAL
mode lets other processes read the threads while a run writes. Checkpoints are history a thread
cannot be resumed without, so a damaged file is never set aside: it raises
:class:`~maru.graph.GraphCheckpointError`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .. import _sqlite
from .checkpoint import Checkpoint, CheckpointSaver, decode, encode
from .errors import GraphCheckpointError

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE maru_graph_checkpoints ("
    " thread_id TEXT NOT NULL, step INTEGER NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,"
    " PRIMARY KEY (thread_id, step)) WITHOUT ROWID",
    "CREATE TABLE maru_graph_snapshots ("
    " thread_id TEXT PRIMARY KEY, step INTEGER NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL)",
)
_PUT = "INSERT INTO maru_graph_checkpoints (thread_id, step, body, created_at) VALUES (?, ?, ?, ?)"
_RECORDS = (
    "SELECT step, body, created_at FROM maru_graph_checkpoints WHERE thread_id = ? AND step > ? ORDER BY step"
)
_PUT_SNAPSHOT = (
    "INSERT OR REPLACE INTO maru_graph_snapshots (thread_id, step, body, created_at) VALUES (?, ?, ?, ?)"
)
_SNAPSHOT = "SELECT step, body, created_at FROM maru_graph_snapshots WHERE thread_id = ?"
_LOAD = (  # the snapshot (kind 0), then the checkpoints after it (kind 1), in one read
    "SELECT 0 AS kind, step, body, created_at FROM maru_graph_snapshots WHERE thread_id = ?1"
    " UNION ALL SELECT 1, step, body, created_at FROM maru_graph_checkpoints WHERE thread_id = ?1"
    " AND step > coalesce((SELECT step FROM maru_graph_snapshots WHERE thread_id = ?1), -1)"
    " ORDER BY kind, step"
)
_DELETE = (
    "DELETE FROM maru_graph_checkpoints WHERE thread_id = ?",
    "DELETE FROM maru_graph_snapshots WHERE thread_id = ?",
)
_BYTES = (
    "SELECT (SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM maru_graph_checkpoints WHERE thread_id = ?1)"
    " + (SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM maru_graph_snapshots WHERE thread_id = ?1)"
)


class SQLiteSaver(CheckpointSaver):
    """Checkpoints in the SQLite file ``path`` (created with its folder when missing); threads
    written by one compiled graph are resumed by any other compiled with the same file."""

    def __init__(
        self, path: str | os.PathLike[str] = ".maru/graph.sqlite", *, timeout: float = 30.0, snapshot_every: int = 32
    ) -> None:
        if _sqlite.is_memory_path(path):
            raise ValueError(
                "SQLiteSaver needs a file (each thread opens its own connection, and an in-memory "
                "database is private to one connection); use InMemorySaver to keep checkpoints in memory"
            )
        self.path = Path(path)
        self.timeout = timeout
        self.snapshot_every = snapshot_every
        _sqlite.make_parent_folder(self.path, GraphCheckpointError, "the graph checkpoint file")
        self._connections = _sqlite.ThreadConnections(
            self.path, timeout=timeout, setup=self._check_schema, on_error=self._error
        )
        self._connections.open()

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        _sqlite.require_schema(
            conn, meta_table="maru_graph_meta", version=SCHEMA_VERSION, statements=_SCHEMA,
            error=GraphCheckpointError, path=self.path, kind="maru graph checkpoints",
            elsewhere="point SQLiteSaver at another file",
            on_mismatch="use the maru version that wrote it, or point SQLiteSaver at a new file",
        )

    def _error(self, exc: sqlite3.Error) -> GraphCheckpointError:
        return _sqlite.error_for(
            exc, GraphCheckpointError, what=f"the graph checkpoint file {self.path}", timeout=self.timeout,
            timeout_option="SQLiteSaver(timeout=...)",
            if_corrupt="restore it from a backup, or point SQLiteSaver at a new file (its threads are lost)",
            if_other="check that the path is a writable file",
        )

    def _execute(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return self._connections.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # ----------------------------------------------------------------- the saver
    def put(self, thread_id: str, checkpoint: Checkpoint) -> None:
        self._execute(_PUT, (thread_id, checkpoint.step, encode(checkpoint), checkpoint.created_at))

    def records(self, thread_id: str, after: int = -1) -> list[Checkpoint]:
        rows = self._execute(_RECORDS, (thread_id, after))
        return [decode(step, body, created_at) for step, body, created_at in rows]  # type: ignore[arg-type]

    def put_snapshot(self, thread_id: str, snapshot: Checkpoint) -> None:
        self._execute(_PUT_SNAPSHOT, (thread_id, snapshot.step, encode(snapshot), snapshot.created_at))

    def snapshot(self, thread_id: str) -> Checkpoint | None:
        rows = self._execute(_SNAPSHOT, (thread_id,))
        return decode(*rows[0]) if rows else None  # type: ignore[arg-type]

    def load(self, thread_id: str) -> tuple[Checkpoint | None, list[Checkpoint]]:
        rows = self._execute(_LOAD, (thread_id,))
        snapshot = decode(*rows[0][1:]) if rows and rows[0][0] == 0 else None  # type: ignore[arg-type]
        return snapshot, [decode(*row[1:]) for row in rows if row[0] == 1]  # type: ignore[arg-type]

    def delete_thread(self, thread_id: str) -> None:
        try:
            with _sqlite.write_transaction(self._connections.get()) as conn:
                for statement in _DELETE:
                    conn.execute(statement, (thread_id,))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def stored_bytes(self, thread_id: str) -> int:
        """What the thread's checkpoints take, encoded (the rows' bodies)."""
        return int(self._execute(_BYTES, (thread_id,))[0][0])  # type: ignore[call-overload]

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        self._connections.close()

    def __enter__(self) -> SQLiteSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
