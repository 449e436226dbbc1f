"""``SQLiteSaver``: a graph's checkpoints in one SQLite file (WAL), one row per superstep.

A row holds the step's updates, not the state (see :mod:`maru.graph.checkpoint`), so a thread of N
steps takes O(N) bytes. Each ``put`` is one ``INSERT``, committed before the run moves on; WAL
mode lets other processes read the threads while a run writes. Checkpoints are history a thread
cannot be resumed without, so a damaged file is never set aside: it raises
:class:`~maru.graph.GraphCheckpointError`.

A superstep writes one small row, so a run commits often: the WAL is folded into the database
every :data:`WAL_CHECKPOINT_PAGES` pages rather than SQLite's 1,000, because each fold costs two
fsyncs and at 1,000 they were about 40% of a commit. Durability is SQLite's WAL + ``synchronous =
NORMAL`` either way (a commit survives the process being killed; the file stays consistent after
a power loss); the WAL grows to about 32 MB between folds and is cut back to
:data:`WAL_KEEP_BYTES` after each.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import _sqlite
from .checkpoint import Checkpoint, encode, step_taken
from .errors import GraphCheckpointError
from .sql_saver import SQLSaver, statements

SCHEMA_VERSION = 1
WAL_CHECKPOINT_PAGES = 8192
"""Fold the WAL into the database once it holds this many pages (SQLite's default is 1,000)."""
WAL_KEEP_BYTES = 4 * 1024 * 1024
"""What the WAL file is cut back to after it was folded."""
_SQL = statements("?", real="REAL", table_suffix=" WITHOUT ROWID", octet_length="length(CAST({} AS BLOB))")


class SQLiteSaver(SQLSaver):
    """Checkpoints in the SQLite file ``path`` (created with its folder when missing); threads
    written by one compiled graph are resumed by any other compiled with the same file."""

    sql = _SQL

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
            self.path, timeout=timeout, setup=self._setup, on_error=self._error
        )
        self._connections.open()

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        self._check_schema(conn)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        _sqlite.require_schema(
            conn, meta_table="maru_graph_meta", version=SCHEMA_VERSION, statements=_SQL.schema,
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

    def put(self, thread_id: str, checkpoint: Checkpoint) -> None:
        """One ``INSERT``, straight on this thread's connection: it runs at every superstep."""
        row = (thread_id, checkpoint.step, encode(checkpoint), checkpoint.created_at)
        try:
            self._connections.get().execute(_SQL.put, row)
        except sqlite3.IntegrityError as exc:  # the primary key: this (thread, step) is there already
            raise step_taken(thread_id, checkpoint.step) from exc
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _execute(self, sql: str, params: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int]:
        try:
            cursor = self._connections.get().execute(sql, params)
            return cursor.fetchall(), cursor.rowcount
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _in_one_transaction(self, sql: Sequence[str], params: Sequence[Any]) -> None:
        try:
            with _sqlite.write_transaction(self._connections.get()) as conn:
                for statement in sql:
                    conn.execute(statement, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        self._connections.close()
