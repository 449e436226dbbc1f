"""``PostgresSaver``: a graph's checkpoints in a PostgreSQL database, for threads shared by several
machines. The same two tables and rows as the SQLite saver (:mod:`maru.graph.sql_saver`); every
statement commits at once (autocommit), so a step's checkpoint is durable before the run moves on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .errors import GraphCheckpointError
from .sql_saver import SQLSaver, statements

_SQL = statements(
    "%s", real="DOUBLE PRECISION", table_suffix="", octet_length="octet_length({})", if_not_exists="IF NOT EXISTS "
)


class PostgresSaver(SQLSaver):
    """Checkpoints in the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``, the
    SQLAlchemy form ``postgresql+psycopg://…``, or a libpq ``key=value`` string); the tables are
    created when missing. Needs ``psycopg`` (3). One connection, shared by the threads of the process."""

    sql = _SQL
    io_bound = True

    def __init__(self, url: str, *, snapshot_every: int = 32) -> None:
        import psycopg

        self.conninfo = url.replace("+psycopg2://", "://").replace("+psycopg://", "://")
        self.snapshot_every = snapshot_every
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
            with self._conn.transaction():
                for statement in _SQL.schema:
                    self._conn.execute(statement)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _where(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self.conninfo)
        except Exception:  # a malformed URL: psycopg's own error says what is wrong with it
            return "the graph checkpoint database"
        host = parts.get("host") or "localhost"
        return f"the graph checkpoint database {host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"

    def _error(self, exc: Exception) -> GraphCheckpointError:
        return GraphCheckpointError(
            f"cannot use {self._where()} ({str(exc).strip()}); check the URL, that the server is running "
            "and that the user may create and write tables there"
        )

    def _execute(self, sql: str, params: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int]:
        import psycopg

        try:
            with self._lock:
                cursor = self._conn.execute(sql, params)
                return (cursor.fetchall() if cursor.description else []), cursor.rowcount
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _in_one_transaction(self, sql: Sequence[str], params: Sequence[Any]) -> None:
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                for statement in sql:
                    self._conn.execute(statement, params)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
