"""What the SQL checkpoint savers (SQLite, PostgreSQL) share: two tables, the statements on them in
each database's words, and the saver methods written once over "run this statement".

- ``maru_graph_checkpoints``: one row per (thread, step), its body the encoded checkpoint;
- ``maru_graph_snapshots``: one row per thread, the latest snapshot, replaced in place.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from .checkpoint import Checkpoint, CheckpointSaver, decode, encode, step_taken
from .errors import GraphCheckpointError


@dataclass(frozen=True, slots=True)
class Statements:
    """The saver's SQL in one database's dialect."""

    schema: tuple[str, ...]
    put: str
    put_snapshot: str
    records: str
    snapshot: str
    load: str
    delete: tuple[str, ...]
    prune: str
    stored_bytes: str


def statements(mark: str, *, real: str, table_suffix: str, octet_length: str, if_not_exists: str = "") -> Statements:
    """The statements with ``mark`` as the parameter placeholder (``?`` or ``%s``); ``real`` is the
    float type, ``octet_length`` a format for a text column's size in bytes."""
    cps, snaps = "maru_graph_checkpoints", "maru_graph_snapshots"
    columns = "(thread_id, step, body, created_at)"
    values = f"({mark}, {mark}, {mark}, {mark})"
    size = octet_length.format("body")
    return Statements(
        schema=(
            f"CREATE TABLE {if_not_exists}{cps} (thread_id TEXT NOT NULL, step INTEGER NOT NULL, body TEXT NOT NULL,"
            f" created_at {real} NOT NULL, PRIMARY KEY (thread_id, step)){table_suffix}",
            f"CREATE TABLE {if_not_exists}{snaps} (thread_id TEXT PRIMARY KEY, step INTEGER NOT NULL,"
            f" body TEXT NOT NULL, created_at {real} NOT NULL)",
        ),
        put=f"INSERT INTO {cps} {columns} VALUES {values}",
        put_snapshot=(
            f"INSERT INTO {snaps} {columns} VALUES {values} ON CONFLICT (thread_id) DO UPDATE SET"
            " step = excluded.step, body = excluded.body, created_at = excluded.created_at"
        ),
        records=f"SELECT step, body, created_at FROM {cps} WHERE thread_id = {mark} AND step > {mark} ORDER BY step",
        snapshot=f"SELECT step, body, created_at FROM {snaps} WHERE thread_id = {mark}",
        load=(  # the snapshot (kind 0), then the checkpoints after it (kind 1), in one read
            f"SELECT 0 AS kind, step, body, created_at FROM {snaps} WHERE thread_id = {mark}"
            f" UNION ALL SELECT 1, step, body, created_at FROM {cps} WHERE thread_id = {mark}"
            f" AND step > coalesce((SELECT step FROM {snaps} WHERE thread_id = {mark}), -1)"
            " ORDER BY kind, step"
        ),
        delete=(f"DELETE FROM {cps} WHERE thread_id = {mark}", f"DELETE FROM {snaps} WHERE thread_id = {mark}"),
        prune=(
            f"DELETE FROM {cps} WHERE thread_id = {mark}"
            f" AND step <= (SELECT step FROM {snaps} WHERE thread_id = {mark})"
        ),
        stored_bytes=(
            f"SELECT (SELECT coalesce(sum({size}), 0) FROM {cps} WHERE thread_id = {mark})"
            f" + (SELECT coalesce(sum({size}), 0) FROM {snaps} WHERE thread_id = {mark})"
        ),
    )


class SQLSaver(CheckpointSaver):
    """A saver over SQL tables: subclasses say how to run a statement and a transaction."""

    sql: Statements

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int]:
        """Run one statement (committed at once): its rows, and how many rows it changed."""

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._execute(sql, params)[0]

    @abstractmethod
    def close(self) -> None:
        """Close the saver's connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _in_one_transaction(self, sql: Sequence[str], params: Sequence[Any]) -> None:
        """Run the statements, each with ``params``, in one transaction."""

    def put(self, thread_id: str, checkpoint: Checkpoint) -> None:
        try:
            self._rows(self.sql.put, (thread_id, checkpoint.step, encode(checkpoint), checkpoint.created_at))
        except GraphCheckpointError as exc:
            if self._is_duplicate(exc.__cause__):
                raise step_taken(thread_id, checkpoint.step) from exc.__cause__
            raise

    @staticmethod
    def _is_duplicate(exc: BaseException | None) -> bool:
        """The database refused a second row for one (thread, step): SQLite's and PostgreSQL's words."""
        text = str(exc)
        return "UNIQUE constraint failed" in text or "duplicate key value" in text

    def records(self, thread_id: str, after: int = -1) -> list[Checkpoint]:
        return [decode(*row) for row in self._rows(self.sql.records, (thread_id, after))]

    def put_snapshot(self, thread_id: str, snapshot: Checkpoint) -> None:
        self._rows(self.sql.put_snapshot, (thread_id, snapshot.step, encode(snapshot), snapshot.created_at))

    def snapshot(self, thread_id: str) -> Checkpoint | None:
        rows = self._rows(self.sql.snapshot, (thread_id,))
        return decode(*rows[0]) if rows else None

    def load(self, thread_id: str) -> tuple[Checkpoint | None, list[Checkpoint]]:
        rows = self._rows(self.sql.load, (thread_id,) * 3)
        snapshot = decode(*rows[0][1:]) if rows and rows[0][0] == 0 else None
        return snapshot, [decode(*row[1:]) for row in rows if row[0] == 1]

    def prune(self, thread_id: str) -> int:
        return self._execute(self.sql.prune, (thread_id, thread_id))[1]

    def delete_thread(self, thread_id: str) -> None:
        self._in_one_transaction(self.sql.delete, (thread_id,))

    def stored_bytes(self, thread_id: str) -> int:
        """What the thread's checkpoints and snapshot take, encoded (the rows' bodies)."""
        return int(self._rows(self.sql.stored_bytes, (thread_id, thread_id))[0][0])
