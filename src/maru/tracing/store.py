"""``RunStore``: traces in a SQLite file — the default sink, and the queries the viewer runs.

- **Writers**: any number of threads and processes. The file is in WAL mode, each thread has its
  own connection (fresh after a fork), and a trace is written in one ``BEGIN IMMEDIATE``
  transaction, waiting up to ``timeout`` seconds for another writer's lock. Writing a trace again
  replaces its runs (``INSERT OR REPLACE`` by run id).
- **Schema** (version 4; older stores are upgraded in place): table ``runs`` with one column per :class:`~maru.tracing.run.Run` field;
  ``inputs``, ``outputs``, ``tags`` and ``metadata`` are JSON text. Indexes: ``trace_id``; root runs
  (``parent_id IS NULL``) by ``start_time``; ``name``. ``maru_trace_meta`` holds the version.
  The experiment tables of ``maru eval`` (version 4) are described in :mod:`maru.tracing.experiments`.
- **A trace** is its root run plus its descendants; listing and counting look at root runs, whose
  tokens and cost the tracer has summed over the tree.
- A writer that finds its SQLite file empty (0 bytes) or damaged keeps it aside as
  ``<name>.damaged-<time>``, warns once (:class:`~maru._sqlite.DamagedFileWarning`) and goes on in
  a new store, so new traces are not dropped. A file that is not a SQLite database, belongs to
  something else or has another schema version raises :class:`~maru.errors.TraceStoreError`
  naming it, as does a damaged store opened for reading.
"""

from __future__ import annotations

import json
import operator
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import _sqlite
from .._home import maru_home
from ..errors import TraceStoreError
from .experiments import TABLES as _EXPERIMENT_TABLES
from .experiments import Experiments
from .run import Run

__all__ = ["SCHEMA_VERSION", "RunStore", "TraceStats", "default_path", "parse_time"]


def default_path() -> Path:
    """Where traces go by default: ``traces.sqlite`` in maru's home folder (``$MARU_HOME``, else
    the project's ``.maru``; :mod:`maru._home`), so every sub-folder of a project shares one store."""
    return maru_home() / "traces.sqlite"

SCHEMA_VERSION = 4

_COLUMNS = (
    "id",
    "trace_id",
    "parent_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "inputs",
    "outputs",
    "error",
    "tags",
    "metadata",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "stacktrace",
)
_JSON_COLUMNS = frozenset({"inputs", "outputs", "tags", "metadata"})
_SELECT = "SELECT " + ", ".join(f"r.{c}" for c in _COLUMNS) + " FROM runs AS r"
_INSERT = (
    f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SCHEMA = (
    "CREATE TABLE runs ("
    " id TEXT PRIMARY KEY,"
    " trace_id TEXT NOT NULL,"
    " parent_id TEXT,"
    " name TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " start_time REAL NOT NULL,"
    " end_time REAL NOT NULL,"
    " inputs TEXT,"
    " outputs TEXT,"
    " error TEXT,"
    " tags TEXT NOT NULL DEFAULT '[]',"
    " metadata TEXT NOT NULL DEFAULT '{}',"
    " model TEXT,"
    " provider TEXT,"
    " input_tokens INTEGER,"
    " output_tokens INTEGER,"
    " cached_tokens INTEGER,"
    " cost REAL,"
    " stacktrace TEXT)",
    "CREATE INDEX runs_trace ON runs (trace_id)",
    "CREATE INDEX runs_roots ON runs (start_time) WHERE parent_id IS NULL",
    "CREATE INDEX runs_name ON runs (name)",
    *_EXPERIMENT_TABLES,
)
_UPGRADES = {
    1: ("ALTER TABLE runs ADD COLUMN provider TEXT",),
    2: ("ALTER TABLE runs ADD COLUMN stacktrace TEXT",),
    3: _EXPERIMENT_TABLES,
}
"""Statements that take a store from a version to the next: older stores open and keep their runs."""


@dataclass(frozen=True, slots=True)
class TraceStats:
    """How many runs a trace has and how many of them failed."""

    runs: int
    errors: int


class RunStore:
    """Traces in the SQLite file at ``path`` (parent folders are created).

    A sink (``write`` / ``flush`` / ``close``) and the query API of ``maru trace`` and the web
    viewer. ``create=False`` opens an existing store only (for readers: a missing file raises
    :class:`~maru.errors.TraceStoreError` instead of leaving an empty store behind). ``timeout`` is
    how long a write waits for another writer's lock.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, create: bool = True, timeout: float = 30.0
    ) -> None:
        path = default_path() if path is None else path
        if _sqlite.is_memory_path(path):
            raise ValueError(
                "RunStore needs a file (every thread opens its own connection, and in-memory "
                "databases are private to one connection); use a temporary file"
            )
        self.path = Path(path)
        self.timeout = timeout
        if create:
            _sqlite.make_parent_folder(self.path, TraceStoreError, "the trace store")
            target: str | Path = self.path
        else:
            if not self.path.exists():
                raise TraceStoreError(
                    f"no trace store at {self.path}: nothing has been traced there yet. Turn tracing on "
                    "(maru.tracing.enable() or MARU_TRACING=1) and run something, or pass the path of "
                    "an existing store (--db, MARU_TRACE_DB)"
                )
            if self.path.is_dir():
                raise TraceStoreError(f"{self.path} is a folder, not a trace store; pass the .sqlite file")
            target = self.path.resolve().as_uri() + "?mode=rw"
        self._connections = _sqlite.ThreadConnections(
            target, timeout=timeout, setup=self._check_schema, on_error=self._error, uri=not create,
            damaged="the trace store",
        )
        self._connections.open()

    # ----------------------------------------------------------------- connections
    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        _sqlite.require_schema(
            conn, meta_table="maru_trace_meta", version=SCHEMA_VERSION, statements=_SCHEMA, upgrades=_UPGRADES,
            error=TraceStoreError, path=self.path, kind="maru trace schema",
            elsewhere="point the trace store at another file",
            on_mismatch="move the file away (maru creates a new store) or use a matching maru",
        )

    def _error(self, exc: sqlite3.Error) -> TraceStoreError:
        return _sqlite.error_for(
            exc, TraceStoreError, what=f"the trace store {self.path}", timeout=self.timeout,
            timeout_option="RunStore(timeout=...)",
            if_corrupt="delete or move it and maru will create a new, empty store there",
            if_other="check that the path is a writable file",
        )

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # ----------------------------------------------------------------- the sink
    def write(self, runs: list[Run]) -> None:
        """Store the runs of one or more traces in one transaction."""
        if not runs:
            return
        rows = [_row(run) for run in runs]

        def transaction() -> None:
            conn = self._conn()
            with _sqlite.write_transaction(conn):
                conn.executemany(_INSERT, rows)

        try:  # a damaged file is set aside, loudly, and the runs go to a new one
            self._connections.run(lambda: _sqlite.retry_busy(transaction, self.timeout))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def flush(self) -> None:
        """Nothing to do: every ``write`` is committed before it returns."""

    def close(self) -> None:
        """Close this process's connections; the store stays usable (the next call reopens)."""
        self._connections.close()

    @property
    def experiments(self) -> Experiments:
        """The ``maru eval`` experiments kept in this store (:mod:`maru.tracing.experiments`)."""
        return Experiments(self)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- queries
    def list_traces(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        since: float | None = None,
        until: float | None = None,
        errors_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Root runs, newest first. ``name``: a case-insensitive substring of the root's name;
        ``tag``: some run of the trace carries it; ``since`` / ``until``: the root started in
        ``[since, until)`` (epoch seconds); ``errors_only``: some run of the trace failed."""
        where, params = _filters(name, tag, since, until, errors_only)
        sql = f"{_SELECT} WHERE {where} ORDER BY r.start_time DESC, r.id DESC LIMIT ? OFFSET ?"
        rows = self._query(sql, [*params, max(0, int(limit)), max(0, int(offset))])
        return [_run(row) for row in rows]

    def count_traces(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        since: float | None = None,
        until: float | None = None,
        errors_only: bool = False,
    ) -> int:
        """How many traces :meth:`list_traces` would find with these filters and no limit."""
        where, params = _filters(name, tag, since, until, errors_only)
        return int(self._query(f"SELECT count(*) FROM runs AS r WHERE {where}", params)[0][0])

    def get_trace(self, trace_id: str) -> list[Run]:
        """Every run of a trace, by start time (parents before the children they started); ``[]``
        when there is no such trace."""
        sql = f"{_SELECT} WHERE r.trace_id = ? ORDER BY r.start_time, r.parent_id IS NOT NULL, r.id"
        return [_run(row) for row in self._query(sql, (trace_id,))]

    def get_run(self, run_id: str) -> Run | None:
        rows = self._query(f"{_SELECT} WHERE r.id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def match_trace_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Trace ids that start with ``prefix`` (an exact id matches itself only), up to ``limit``."""
        if not prefix:
            return []
        exact = self._query("SELECT 1 FROM runs WHERE trace_id = ? LIMIT 1", (prefix,))
        if exact:
            return [prefix]
        # A range on the index rather than LIKE (which cannot use it): ids sort as UTF-8 bytes.
        rows = self._query(
            "SELECT DISTINCT trace_id FROM runs WHERE trace_id >= ? AND trace_id < ? "
            "ORDER BY trace_id LIMIT ?",
            (prefix, prefix + "\U0010ffff", int(limit)),
        )
        return [row[0] for row in rows]

    def trace_stats(self, trace_ids: Iterable[str]) -> dict[str, TraceStats]:
        """Run and error counts of the given traces (for a page of :meth:`list_traces`)."""
        ids = list(dict.fromkeys(trace_ids))
        stats: dict[str, TraceStats] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for trace_id, runs, errors in self._query(
                "SELECT trace_id, count(*), count(error) FROM runs "
                f"WHERE trace_id IN ({marks}) GROUP BY trace_id",
                chunk,
            ):
                stats[trace_id] = TraceStats(int(runs), int(errors))
        return stats

    def delete_before(self, ts: float) -> int:
        """Delete every trace whose root run started before ``ts`` (epoch seconds), with all its
        runs. Returns how many traces were deleted."""
        conn = self._conn()
        deleted = 0

        def transaction() -> None:
            nonlocal deleted
            with _sqlite.write_transaction(conn):
                deleted = conn.execute(
                    "SELECT count(*) FROM runs WHERE parent_id IS NULL AND start_time < ?", (ts,)
                ).fetchone()[0]
                conn.execute(
                    "DELETE FROM runs WHERE trace_id IN "
                    "(SELECT trace_id FROM runs WHERE parent_id IS NULL AND start_time < ?)",
                    (ts,),
                )

        try:
            _sqlite.retry_busy(transaction, self.timeout)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return int(deleted)

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"


# --------------------------------------------------------------------------- rows
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
"""One encoder for every value (``json.dumps`` with options builds a new one per call)."""

_fields = operator.attrgetter(*_COLUMNS)
_JSON_SLOTS = tuple(
    (_COLUMNS.index(column), empty)
    for column, empty in (("inputs", None), ("outputs", None), ("tags", "[]"), ("metadata", "{}"))
)
"""Where the JSON columns sit in a row, and the text an empty one is stored as (``None``: a missing
input or output stays NULL; falsy values such as ``0`` or ``""`` are still encoded)."""


def _row(run: Run) -> tuple[Any, ...]:
    values = list(_fields(run))
    for index, empty in _JSON_SLOTS:
        value = values[index]
        if empty is None:
            values[index] = None if value is None else _encode(value)
        else:
            values[index] = _encode(value) if value else empty
    return tuple(values)


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:  # a hand-edited row: show what is there rather than fail the whole page
        return text


def _run(row: Sequence[Any]) -> Run:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["inputs"] = _loads(data["inputs"], None)
    data["outputs"] = _loads(data["outputs"], None)
    tags = _loads(data["tags"], [])
    data["tags"] = tags if isinstance(tags, list) else [str(tags)]
    metadata = _loads(data["metadata"], {})
    data["metadata"] = metadata if isinstance(metadata, dict) else {"value": metadata}
    return Run(**data)


def _filters(
    name: str | None, tag: str | None, since: float | None, until: float | None, errors_only: bool
) -> tuple[str, list[Any]]:
    clauses = ["r.parent_id IS NULL"]
    params: list[Any] = []
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("r.name LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if since is not None:
        clauses.append("r.start_time >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append("r.start_time < ?")
        params.append(float(until))
    if tag:
        clauses.append(
            "EXISTS (SELECT 1 FROM runs AS t, json_each(t.tags) AS j "
            "WHERE t.trace_id = r.trace_id AND j.value = ?)"
        )
        params.append(tag)
    if errors_only:
        clauses.append(
            "EXISTS (SELECT 1 FROM runs AS e WHERE e.trace_id = r.trace_id AND e.error IS NOT NULL)"
        )
    return " AND ".join(clauses), params


# --------------------------------------------------------------------------- time filters
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "day": 86400}
_UNITS |= {"w": 604800, "wk": 604800}


def parse_time(value: str | float | None, *, now: float | None = None) -> float | None:
    """A point in time as epoch seconds, from what people type in a filter:

    - a duration back from now: ``30s``, ``15m``, ``1h``, ``2d``, ``1w``;
    - an ISO date or date-time: ``2025-11-25``, ``2025-11-25T09:30``, ``…+09:00`` / ``…Z``
      (without a zone: local time);
    - epoch seconds: ``1764000000``.

    ``None`` or an empty string is ``None``. Anything else raises ``ValueError`` saying what is
    accepted."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if not text:
        return None
    match = _RELATIVE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
        base = now if now is not None else datetime.now().timestamp()
        return base - seconds
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"cannot read the time {value!r}: give a duration back from now (30s, 15m, 1h, 2d, 1w), "
            "an ISO date or date-time (2025-11-25, 2025-11-25T09:30, 2025-11-25T09:30+09:00) or "
            "epoch seconds"
        ) from None
    return moment.timestamp()  # naive → local time, aware → its zone

