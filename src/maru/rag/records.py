"""``RecordManager``: which document ids a vector store holds, from which source, with which content
hash and when each was last written or confirmed — what :func:`~maru.rag.indexing.index` reads to
skip unchanged documents and to find the ones a run no longer produced.

- **Any SQL database** through SQLAlchemy Core (portable statements only): SQLite by default (WAL
  mode and a busy timeout, so several processes can share one file), PostgreSQL or another server
  at scale. The only dialect-specific parts are SQLite's connection pragmas and the native upsert
  (``ON CONFLICT``) where the dialect has one; other dialects get update-then-insert.
- **One table**, ``maru_records``, keyed by ``(namespace, id)`` with indexes on
  ``(namespace, source_id)`` (scoped cleanup) and ``(namespace, updated_at)`` (what a run did not
  touch). Namespaces let several collections share one database.
- **Batched**: every method takes many ids and runs one statement per chunk of
  :data:`CHUNK` ids (an ``IN`` list or an ``executemany``), never one per id.
- **Times** come from :meth:`RecordManager.get_time`: wall-clock seconds, but always later than
  every time already in the namespace, so a clock that steps back cannot make a run's writes look
  older than the previous run's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import _sqlite
from ..errors import IndexingError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["CHUNK", "RecordManager", "make_engine", "upsert_rows"]

CHUNK = 500
"""Ids per statement: well under every database's limit on bound parameters."""

INVALID_HASH = ""
"""Content hash of a record whose document is being deleted (see :meth:`RecordManager.invalidate`)."""

Record = tuple[str, "str | None", str]


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def make_engine(url: str, timeout: float = 30.0, what: str = "the database") -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder created (``what`` names the store in
    the error when that fails), WAL mode, ``synchronous=NORMAL`` and a busy timeout, an in-memory
    SQLite database one connection shared by every thread (else each connection would see its own
    empty database)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import StaticPool

    file = _sqlite.file_of_url(url)
    if file is not None:
        _sqlite.make_parent_folder(file, IndexingError, what)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return sa.create_engine(
            url, connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    engine = sa.create_engine(url, connect_args={"timeout": timeout})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # dialect-guarded: SQLite only
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    return engine


def create_tables(engine: sa.Engine, metadata: sa.MetaData, what: str) -> None:
    """Create missing tables; another process creating them at the same moment is not an error."""
    import sqlalchemy as sa

    for attempt in range(3):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except sa.exc.OperationalError as exc:
            if attempt == 2 or "already exists" not in str(exc):
                raise IndexingError(
                    f"cannot create the {what} tables at {engine.url!r}: {exc}; check the URL, "
                    "that the database is reachable and writable"
                ) from exc
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise


def upsert_rows(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
) -> None:
    """Insert ``rows`` or overwrite the rows with the same ``keys``: the dialect's native upsert
    where it has one (SQLite, PostgreSQL, MySQL), else update the existing rows and insert the rest.
    Every row must have the same values for all ``keys`` but the last (the namespace)."""
    import sqlalchemy as sa

    if not rows:
        return
    values = [c for c in rows[0] if c not in keys]
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt: Any = sqlite_insert(table)
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in values}
        )
        conn.execute(stmt, rows)
        return
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mstmt = mysql_insert(table)
        conn.execute(mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in values}), rows)
        return
    # Portable fallback: find which rows exist (rows share every key but the last), UPDATE those
    # (executemany), INSERT the rest.
    *fixed_keys, last = keys
    where = [table.c[k] == rows[0][k] for k in fixed_keys]
    found: set[tuple[Any, ...]] = set()
    for part in chunks([r[last] for r in rows]):
        sel = sa.select(*[table.c[k] for k in keys]).where(*where, table.c[last].in_(part))
        found.update(tuple(row) for row in conn.execute(sel))
    old = [r for r in rows if tuple(r[k] for k in keys) in found]
    new = [r for r in rows if tuple(r[k] for k in keys) not in found]
    if old:
        stmt_u = (
            sa.update(table)
            .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys])
            .values({c: sa.bindparam(f"v_{c}") for c in values})
        )
        conn.execute(
            stmt_u,
            [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{c}": r[c] for c in values}} for r in old],
        )
    if new:
        conn.execute(sa.insert(table), new)


class NamespacedTable:
    """What the record manager and the SQL docstore share: one table of rows keyed by namespace on
    an engine — counting a namespace's rows, closing, use as a context manager."""

    _engine: Any
    _t: Any
    namespace: str

    def _rows_in_namespace(self) -> int:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            query = sa.select(sa.func.count()).where(self._t.c.namespace == self.namespace)
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordManager(NamespacedTable):
    """Records of indexed documents in the SQL database at ``url`` (any SQLAlchemy URL), under
    ``namespace``. A record is ``(id, source_id, content_hash, updated_at)``.

    The tables are created on first use. Use one namespace per collection (vector store)."""

    def __init__(self, url: str = "sqlite:///maru-records.db", namespace: str = "default") -> None:
        import sqlalchemy as sa

        if not namespace:
            raise ValueError("RecordManager namespace must be a non-empty string")
        self.url = url
        self.namespace = namespace
        self._engine = make_engine(url, what="the record manager")
        meta = sa.MetaData()
        self._t = sa.Table(
            "maru_records",
            meta,
            sa.Column("namespace", sa.String(255), primary_key=True),
            sa.Column("id", sa.String(512), primary_key=True),
            sa.Column("source_id", sa.String(512), nullable=True),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.Double, nullable=False),
            sa.Index("ix_maru_records_source", "namespace", "source_id"),
            sa.Index("ix_maru_records_updated", "namespace", "updated_at"),
        )
        create_tables(self._engine, meta, "record manager")

    # ------------------------------------------------------------------ time
    def get_time(self) -> float:
        """Now, in seconds: the later of the wall clock and just after the newest time in this
        namespace, so records written from now on are newer than every existing one."""
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(self._t.c.updated_at)).where(
                    self._t.c.namespace == self.namespace
                )
            ).scalar()
        now = time.time()
        return now if newest is None or now > newest else float(newest) + 1e-3

    # ------------------------------------------------------------------ writes
    def upsert(self, records: Iterable[Record], time: float) -> None:
        """Write ``(id, source_id, content_hash)`` records stamped ``time`` (one transaction per
        :data:`CHUNK` records)."""
        rows = [
            {
                "namespace": self.namespace,
                "id": rid,
                "source_id": source,
                "content_hash": digest,
                "updated_at": float(time),
            }
            for rid, source, digest in records
        ]
        for part in chunks(rows):
            with self._engine.begin() as conn:
                upsert_rows(conn, self._t, list(part), ("namespace", "id"))

    def invalidate(self, ids: Sequence[str]) -> None:
        """Blank the content hash of these records, keeping their time: marks documents about to be
        deleted, so that if the process dies mid-delete the next run re-writes (instead of skipping)
        a document it produces again, and still deletes it if it does not."""
        import sqlalchemy as sa

        t = self._t
        for part in chunks(list(ids)):
            with self._engine.begin() as conn:
                conn.execute(
                    sa.update(t)
                    .where(t.c.namespace == self.namespace, t.c.id.in_(part))
                    .values(content_hash=INVALID_HASH)
                )

    def delete(self, ids: Sequence[str]) -> int:
        """Remove these records; return how many existed."""
        import sqlalchemy as sa

        t = self._t
        gone = 0
        for part in chunks(list(ids)):
            with self._engine.begin() as conn:
                result = conn.execute(
                    sa.delete(t).where(t.c.namespace == self.namespace, t.c.id.in_(part))
                )
                gone += result.rowcount or 0
        return gone

    # ------------------------------------------------------------------ reads
    def existing(self, ids: Sequence[str]) -> dict[str, str]:
        """``id -> content_hash`` for the ids that have a record."""
        return {rid: digest for rid, (digest, _) in self.existing_with_times(ids).items()}

    def existing_with_times(self, ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """``id -> (content_hash, updated_at)`` for the ids that have a record."""
        import sqlalchemy as sa

        t = self._t
        out: dict[str, tuple[str, float]] = {}
        with self._engine.connect() as conn:
            for part in chunks(list(dict.fromkeys(ids))):
                rows = conn.execute(
                    sa.select(t.c.id, t.c.content_hash, t.c.updated_at).where(
                        t.c.namespace == self.namespace, t.c.id.in_(part)
                    )
                )
                out.update((rid, (digest, float(ts))) for rid, digest, ts in rows)
        return out

    def known(self, ids: Sequence[str], *, any_namespace: bool = False) -> set[str]:
        """The ids among ``ids`` that have a record (in this namespace, or in any)."""
        import sqlalchemy as sa

        t = self._t
        out: set[str] = set()
        with self._engine.connect() as conn:
            for part in chunks(list(dict.fromkeys(ids))):
                sel = sa.select(t.c.id).where(t.c.id.in_(part))
                if not any_namespace:
                    sel = sel.where(t.c.namespace == self.namespace)
                out.update(conn.execute(sel).scalars())
        return out

    def list_ids(
        self,
        before: float | None = None,
        source_ids: Sequence[str | None] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Ids in this namespace, optionally only those written before ``before`` and/or from these
        ``source_ids``, at most ``limit`` of them."""
        import sqlalchemy as sa

        t = self._t
        base = sa.select(t.c.id).where(t.c.namespace == self.namespace)
        if before is not None:
            base = base.where(t.c.updated_at < before)
        out: list[str] = []
        with self._engine.connect() as conn:
            if source_ids is None:
                sel = base if limit is None else base.limit(limit)
                return list(conn.execute(sel).scalars())
            wanted = list(dict.fromkeys(source_ids))
            for part in chunks(wanted):
                named = [s for s in part if s is not None]
                cond: Any = t.c.source_id.in_(named)
                if len(named) < len(part):
                    cond = sa.or_(cond, t.c.source_id.is_(None))
                sel = base.where(cond)
                if limit is not None:
                    sel = sel.limit(limit - len(out))
                out.extend(conn.execute(sel).scalars())
                if limit is not None and len(out) >= limit:
                    break
        return out

    def count(self) -> int:
        """How many records this namespace holds."""
        return self._rows_in_namespace()

    def count_by_source(self) -> dict[str | None, int]:
        """Records per source id in this namespace (one query): what an ingest compares with the
        chunks it wrote per file, to find files whose records were lost."""
        import sqlalchemy as sa

        t = self._t
        query = sa.select(t.c.source_id, sa.func.count()).where(t.c.namespace == self.namespace).group_by(t.c.source_id)
        with self._engine.connect() as conn:
            return {source: int(n) for source, n in conn.execute(query)}

    def check(self) -> None:
        """Raise :class:`~maru.errors.IndexingError` when a SQLite record file is damaged
        (``PRAGMA quick_check``); other databases check themselves."""
        import sqlalchemy as sa

        if self._engine.dialect.name != "sqlite":
            return
        try:
            with self._engine.connect() as conn:
                verdict = conn.exec_driver_sql("PRAGMA quick_check").scalar()
        except sa.exc.DBAPIError as exc:
            verdict = str(exc.orig)
        if verdict != "ok":
            raise IndexingError(f"the record database {self.url} is damaged: {verdict}")

    def __repr__(self) -> str:
        return f"RecordManager({self.url!r}, namespace={self.namespace!r})"
