"""``LocalStore``: the embedded default vector store — a folder with a SQLite file and an HNSW index.

Chosen by measurement (``bench/vector_stores.py``, ``docs/vector-stores.md``): no server, one folder.

- **SQLite is the source of truth** (``store.sqlite``): documents, metadata (JSON), float32 vectors,
  field types, and a change log (one row per written or deleted document, numbered by ``seq``).
  Every write is one transaction, so a crash mid-write leaves the file as it was before the write.
- **The HNSW index** (usearch) lives in memory and is saved as ``index-<seq>-<digest>.usearch``: the
  index as of change ``seq``, written to a temporary file and renamed, so a saved index is never
  partial; the name carries a BLAKE2 digest of the content, checked before loading, because usearch
  loads a damaged file without complaint and then crashes the process in a search.
  Opening loads the newest saved index and replays the log after its ``seq`` (or rebuilds the index
  from SQLite when no saved index is usable), so an index that missed writes — a crash before it was
  saved, another process writing — is brought back in sync. Each search first replays changes that
  other processes logged since. The log is trimmed up to the saved index's ``seq`` after each save.
- **Filters** compile to SQL over ``json_extract`` with bound parameters (never text pasted into
  SQL), with the semantics of :func:`maru.rag.filters.matches`: a missing field makes a comparison
  false and ``ne``/``nin`` true.
- **Filtered search** over-fetches from the index and keeps candidates passing the filter; when
  too few pass (a selective filter), it fetches more, and for very selective filters it searches
  exactly among the rows the filter selects in SQL, so recall does not collapse.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import _sqlite
from ..._process import pid_alive
from ...errors import FilterError, VectorStoreError
from ..documents import Document
from ..filters import And, Compare, Filter, Not, Or, type_name
from .base import VectorStore

if TYPE_CHECKING:
    import numpy as np

    from ...models.embeddings import Embeddings

__all__ = ["SCHEMA_VERSION", "LocalStore", "compile_filter"]

SCHEMA_VERSION = 1
_META = "maru_vs_meta"
_SCHEMA = (
    "CREATE TABLE docs (label INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " text TEXT NOT NULL, metadata TEXT NOT NULL)",
    # vectors apart, so a filter's scan of docs reads no vector pages
    "CREATE TABLE vectors (label INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
    # (field, scalar value) → label, so equality filters find their rows through an index; the
    # value column has no type, so SQLite keeps each value's own type (no affinity conversion)
    "CREATE TABLE facets (field TEXT NOT NULL, value NOT NULL, label INTEGER NOT NULL,"
    " PRIMARY KEY (field, value, label)) WITHOUT ROWID",
    "CREATE INDEX facets_label ON facets (label)",
    "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, label INTEGER NOT NULL)",
    "CREATE TABLE fields (name TEXT PRIMARY KEY, type TEXT NOT NULL)",
)
_HEAD = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)"
_INDEX_FILE = re.compile(r"^index-(\d+)(?:-([0-9a-f]{32}))?\.usearch$")
_FIELD = re.compile(r"^[A-Za-z0-9_.]+$")
_BATCH = 500  # ids per IN (...) list
ADD_THREADS = 1
"""Threads for HNSW inserts. One: usearch's concurrent ``add`` can leave nodes that are stored but
unreachable by search (unum-cloud/USearch#735, open), which here lost exact matches in about one
in four small indexes grown after a reload; single-threaded inserts never did."""


class LocalStore(VectorStore):
    """Documents and vectors in the folder ``path`` (created if missing), searchable by HNSW.

    ``dim``: the vector dimension, checked against the stored one (taken from the first vectors
    otherwise). Tuning: ``connectivity`` (HNSW M), ``expansion_add`` (ef at build),
    ``expansion_search`` (ef at query; higher is slower and more exact), ``save_every`` (changes
    kept only in the log before the index is saved again), ``exact_below`` (a filter selecting fewer
    rows than this share of the store is searched exactly), ``timeout`` (seconds a write waits for
    another writer)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        embeddings: Embeddings | None = None,
        dim: int | None = None,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 64,
        save_every: int = 20_000,
        exact_below: float = 0.02,
        timeout: float = 30.0,
    ) -> None:
        self.embeddings = embeddings
        self.path = Path(path)
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search
        self.save_every = save_every
        self.exact_below = exact_below
        self.timeout = timeout
        if self.path.exists() and not self.path.is_dir():
            raise VectorStoreError(f"LocalStore needs a folder, but {self.path} is a file; choose another path")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreError(f"cannot create the store folder {self.path}: {exc}; choose a writable path") from exc
        self._db = self.path / "store.sqlite"
        self._connections = _sqlite.ThreadConnections(
            self._db, timeout=timeout, setup=self._check_schema, on_error=self._error
        )
        self._lock = threading.RLock()
        self._index: Any = None  # usearch.index.Index, or None while the store has no vectors
        self._seq = 0  # the last change the in-memory index reflects
        self._pending = 0  # changes applied since the index was last saved
        self._dim = self._stored_dim()
        if dim is not None:
            if self._dim is not None and self._dim != dim:
                raise VectorStoreError(
                    f"the store at {self.path} holds vectors of dimension {self._dim}, not {dim}; "
                    "use another folder for another embedding model"
                )
            self._dim = dim
        with self._lock:
            self._load_index()

    # ------------------------------------------------------------------ SQLite
    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        try:
            version = _sqlite.ensure_schema(conn, meta_table=_META, version=SCHEMA_VERSION, statements=_SCHEMA)
        except _sqlite.ForeignDatabase:
            raise VectorStoreError(
                f"{self._db} is a SQLite database of something else; point LocalStore at another folder"
            ) from None
        if version != SCHEMA_VERSION:
            raise VectorStoreError(
                f"the store {self._db} has schema version {version}, this maru uses {SCHEMA_VERSION}; "
                "re-index into a new folder"
            )

    def _error(self, exc: sqlite3.Error) -> VectorStoreError:
        return _sqlite.error_for(
            exc, VectorStoreError, what=f"the store file {self._db}", timeout=self.timeout,
            timeout_option="LocalStore(timeout=...)",
            if_corrupt="move the folder away and re-index", if_other="check the folder is writable",
        )

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _stored_dim(self) -> int | None:
        row = self._read(f"SELECT value FROM {_META} WHERE name = 'dim'")
        return int(row[0][0]) if row else None

    # ------------------------------------------------------------------ index files
    def _new_index(self) -> Any:
        from ..._native import before_usearch

        before_usearch()  # llama.cpp must meet the C++ runtime first (see maru._native)
        from usearch.index import Index

        return Index(
            ndim=self._dim or 0, metric="ip", dtype="f32", connectivity=self.connectivity,
            expansion_add=self.expansion_add, expansion_search=self.expansion_search,
        )

    def _saved_indexes(self) -> list[tuple[int, Path]]:
        found = []
        for entry in self.path.iterdir():
            m = _INDEX_FILE.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
        return sorted(found, reverse=True)

    def _load_index(self) -> None:
        """Newest usable saved index plus the log after it; else a rebuild from SQLite."""
        if self._dim is None:  # the first vectors may have come from another process
            self._dim = self._stored_dim()
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            head = conn.execute(_HEAD).fetchone()[0]
            first = conn.execute("SELECT min(seq) FROM changes").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        oldest_usable = head if first is None else first - 1
        if self._dim is not None:
            for seq, file in self._saved_indexes():
                if not oldest_usable <= seq <= head:
                    continue
                if not _intact(file):  # damaged (or saved without a digest): rebuild instead
                    continue
                index = self._new_index()
                try:
                    index.load(str(file))
                except Exception:  # noqa: BLE001 — unreadable or removed meanwhile: try the next
                    continue
                if index.ndim != self._dim:
                    continue
                self._index, self._seq, self._pending = index, seq, 0
                self._replay()
                return
        self._rebuild()

    def _rebuild(self) -> None:
        import numpy as np

        conn = self._conn()
        conn.execute("BEGIN")
        try:
            head = conn.execute(_HEAD).fetchone()[0]
            rows = conn.execute("SELECT label, vector FROM vectors").fetchall()
        finally:
            conn.execute("COMMIT")
        self._index, self._seq = None, head
        if self._dim is None:
            return
        self._index = self._new_index()
        if rows:
            labels = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
            self._index.add(labels, self._matrix(r[1] for r in rows), threads=ADD_THREADS)
            self._pending = len(rows)
            self.save_index()

    def _replay(self) -> None:
        """Apply the changes logged after ``self._seq`` (by this process or another)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            head = conn.execute(_HEAD).fetchone()[0]
            if head == self._seq:
                return
            first = conn.execute("SELECT min(seq) FROM changes").fetchone()[0]
            if first is None or first > self._seq + 1:
                gap = True
            else:
                gap = False
                labels = [r[0] for r in conn.execute(
                    "SELECT DISTINCT label FROM changes WHERE seq > ?", (self._seq,))]
                present = self._rows_by_label(conn, labels)
        finally:
            conn.execute("COMMIT")
        if gap:  # the log was trimmed past our index: load the newer saved one
            self._load_index()
            return
        self._apply(labels, present)
        self._seq = head

    def _apply(self, changed: Sequence[int], present: Sequence[tuple[int, bytes]]) -> None:
        """Make the index hold exactly ``present`` (label, vector) among the ``changed`` labels."""
        import numpy as np

        if self._dim is None:  # the first vectors came from another process
            self._dim = self._stored_dim()
            if self._dim is None:
                return
        if self._index is None:
            self._index = self._new_index()
        if changed:
            self._index.remove(np.asarray(changed, dtype=np.uint64))
        if present:
            labels = np.asarray([r[0] for r in present], dtype=np.uint64)
            self._index.add(labels, self._matrix(r[1] for r in present), threads=ADD_THREADS)
        self._pending += len(changed)

    def save_index(self) -> None:
        """Write the index to disk now and trim the change log (done on its own every
        ``save_every`` changes and on :meth:`close`)."""
        with self._lock:
            if self._index is None or self._pending == 0:
                return
            seq = self._seq
            tmp = self.path / f".index-{seq}.{os.getpid()}.{threading.get_ident()}.tmp"
            self._index.save(str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            final = self.path / f"index-{seq}-{_digest(tmp)}.usearch"
            os.replace(tmp, final)
            _fsync_dir(self.path)
            self._pending = 0
            try:
                with _sqlite.write_transaction(self._conn()) as conn:
                    conn.execute("DELETE FROM changes WHERE seq <= ?", (seq,))
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            for old, file in self._saved_indexes():
                if old < seq or (old == seq and file != final):
                    file.unlink(missing_ok=True)
            for stray in self.path.glob(".index-*.tmp"):
                pid = stray.name.split(".")[2]
                if pid.isdigit() and not pid_alive(int(pid)):
                    stray.unlink(missing_ok=True)

    # ------------------------------------------------------------------ primitives
    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        unit = _unit_rows(vectors)
        rows = []
        for doc in docs:
            try:
                meta = json.dumps(doc.metadata, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise VectorStoreError(
                    f"metadata of document {doc.id!r} is not JSON ({exc}); use str, int, float, bool "
                    "and lists of them"
                ) from exc
            rows.append((doc.id, doc.text, meta))
        blobs = [vec.tobytes() for vec in unit]
        types = {(k, type_name(v)) for d in docs for k, v in d.metadata.items()}
        facets = [
            [(k, v) for k, v in d.metadata.items() if isinstance(v, str | int | float) and _FIELD.match(k)]
            for d in docs
        ]
        with self._lock:
            self._check_dim(unit.shape[1])
            try:
                with _sqlite.write_transaction(self._conn()) as conn:
                    before = conn.execute(_HEAD).fetchone()[0]
                    stored = self._stored_dim()
                    if stored is None:
                        conn.execute(f"INSERT INTO {_META} (name, value) VALUES ('dim', ?)", (str(self._dim),))
                    elif stored != self._dim:
                        raise VectorStoreError(
                            f"vectors have dimension {self._dim} but the store at {self.path} holds "
                            f"dimension {stored}; use the same embedding model, or another folder"
                        )
                    labels = [
                        conn.execute(
                            "INSERT INTO docs (id, text, metadata) VALUES (?, ?, ?) "
                            "ON CONFLICT (id) DO UPDATE SET text = excluded.text, "
                            "metadata = excluded.metadata RETURNING label",
                            row,
                        ).fetchone()[0]
                        for row in rows
                    ]
                    conn.executemany("DELETE FROM facets WHERE label = ?", ((lb,) for lb in labels))
                    conn.executemany(
                        "INSERT OR IGNORE INTO facets (field, value, label) VALUES (?, ?, ?)",
                        ((k, v, lb) for lb, pairs in zip(labels, facets, strict=True) for k, v in pairs),
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO vectors (label, vector) VALUES (?, ?)", zip(labels, blobs, strict=True)
                    )
                    conn.executemany("INSERT INTO changes (label) VALUES (?)", ((lb,) for lb in labels))
                    conn.executemany("INSERT OR IGNORE INTO fields (name, type) VALUES (?, ?)", sorted(types))
                    after = conn.execute(_HEAD).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            if before == self._seq:  # nobody else wrote since our index was in sync
                last = dict(zip(labels, blobs, strict=True))  # a repeated id: last wins
                self._apply(list(last), list(last.items()))
                self._seq = after
            else:
                self._replay()
            self._maybe_save()

    def _delete(self, ids: Sequence[str]) -> int:
        with self._lock:
            try:
                with _sqlite.write_transaction(self._conn()) as conn:
                    before = conn.execute(_HEAD).fetchone()[0]
                    labels: list[int] = []
                    for part in _batches(list(dict.fromkeys(ids))):
                        marks = ",".join("?" * len(part))
                        labels += [r[0] for r in conn.execute(
                            f"DELETE FROM docs WHERE id IN ({marks}) RETURNING label", part)]
                    conn.executemany("DELETE FROM vectors WHERE label = ?", ((lb,) for lb in labels))
                    conn.executemany("DELETE FROM facets WHERE label = ?", ((lb,) for lb in labels))
                    conn.executemany("INSERT INTO changes (label) VALUES (?)", ((lb,) for lb in labels))
                    after = conn.execute(_HEAD).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            if before == self._seq:
                self._apply(labels, [])
                self._seq = after
            else:
                self._replay()
            self._maybe_save()
        return len(labels)

    def _get(self, ids: Sequence[str]) -> list[Document]:
        found: dict[str, Document] = {}
        for part in _batches(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(part))
            for id_, text, meta in self._read(f"SELECT id, text, metadata FROM docs WHERE id IN ({marks})", part):
                found[id_] = Document(text, json.loads(meta), id_)
        return [_copy(found[i]) for i in ids if i in found]

    def _search(
        self, vector: np.ndarray, k: int, filter: Filter | None, with_vectors: bool
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        import numpy as np

        query = _unit_rows(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        with self._lock:
            self._replay()
            if self._index is None or len(self._index) == 0:
                return []
            if query.shape[0] != self._dim:
                raise VectorStoreError(
                    f"the query vector has dimension {query.shape[0]} but the store holds dimension "
                    f"{self._dim}; embed the query with the store's model"
                )
            size = len(self._index)
            if filter is None:
                labels, scores = self._ann(query, k)
                return self._hits(labels, scores, k, None, with_vectors)
            where, params = compile_filter(filter)
            fetch = max(4 * k, 64)
            while fetch <= max(4 * k, 64) * 64:
                labels, scores = self._ann(query, min(fetch, size))
                hits = self._hits(labels, scores, k, (where, params), with_vectors)
                if len(hits) >= k or len(labels) >= size:
                    return hits
                share = len(hits) / max(len(labels), 1)
                if share < self.exact_below:
                    break
                fetch = math.ceil(fetch * min(64.0, 2 * k / max(len(hits), 1)))
            return self._exact(query, k, filter, where, params, with_vectors)

    def _ann(self, query: np.ndarray, k: int) -> tuple[list[int], list[float]]:
        found = self._index.search(query, k, threads=1)
        return [int(x) for x in found.keys], [1.0 - float(d) for d in found.distances]

    def _hits(
        self, labels: list[int], scores: list[float], k: int,
        filter: tuple[str, list[Any]] | None, with_vectors: bool,
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        """Documents for these index results, best first, ``k`` at most, passing ``filter``."""
        source = "docs d JOIN vectors v ON v.label = d.label" if with_vectors else "docs d"
        columns = "d.label, d.id, d.text, d.metadata" + (", v.vector" if with_vectors else "")
        rows: dict[int, tuple[Any, ...]] = {}
        for part in _batches(labels):
            marks = ",".join("?" * len(part))
            sql = f"SELECT {columns} FROM {source} WHERE d.label IN ({marks})"
            params: list[Any] = list(part)
            if filter is not None:
                sql += f" AND ({filter[0]})"
                params += filter[1]
            rows.update((r[0], r) for r in self._read(sql, params))
        out = []
        for label, score in zip(labels, scores, strict=True):
            if label in rows:
                out.append(self._hit(rows[label], score, with_vectors))
                if len(out) == k:
                    break
        return out

    def _exact(
        self, query: np.ndarray, k: int, filter: Filter, where: str, params: list[Any], with_vectors: bool
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        """Brute force over the rows the filter selects (a selective filter: few rows).

        Conditions at the top of the filter that the facets index can answer (equality, ``in``,
        ranges) narrow the rows first; when they are the whole filter, the JSON check is skipped.
        Only labels and vectors are read for the scoring; documents for the best ``k``."""
        import numpy as np

        narrow, narrow_params, complete = narrowing(filter, "v.label")
        if complete:
            rows = self._read(f"SELECT v.label, v.vector FROM vectors v WHERE {narrow}1", narrow_params)
        else:
            rows = self._read(
                "SELECT d.label, v.vector FROM docs d JOIN vectors v ON v.label = d.label "
                f"WHERE {narrow}({where})", [*narrow_params, *params]
            )
        if not rows:
            return []
        scores = self._matrix(r[1] for r in rows) @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return self._hits([rows[i][0] for i in top], [float(scores[i]) for i in top], k, None, with_vectors)

    def _hit(self, row: tuple[Any, ...], score: float, with_vectors: bool) -> tuple[Document, float, Any]:
        import numpy as np

        vec = np.frombuffer(row[4], dtype=np.float32).copy() if with_vectors else None
        return Document(row[2], json.loads(row[3]), row[1]), score, vec

    def check(self) -> None:
        """Raise :class:`~maru.errors.VectorStoreError` when ``store.sqlite`` is damaged
        (``PRAGMA quick_check``). A damaged saved index needs no check: it is rebuilt on opening."""
        verdict = self._read("PRAGMA quick_check")[0][0]
        if verdict != "ok":
            raise VectorStoreError(f"the store file {self._db} is damaged: {verdict}; move the folder away and re-index")

    def count(self) -> int:
        return int(self._read("SELECT count(*) FROM docs")[0][0])

    def field_types(self) -> dict[str, str]:
        return dict(self._read("SELECT name, type FROM fields"))

    def ids(self) -> Iterator[str]:
        return iter([r[0] for r in self._read("SELECT id FROM docs ORDER BY label")])

    def close(self) -> None:
        """Save the index if it changed since the last save, and close the SQLite connections."""
        with self._lock:
            if self._pending:
                self.save_index()
            self._connections.close()

    # ------------------------------------------------------------------ helpers
    def _check_dim(self, dim: int) -> None:
        if self._dim is None:
            self._dim = dim
        elif dim != self._dim:
            raise VectorStoreError(
                f"vectors have dimension {dim} but the store at {self.path} holds dimension {self._dim}; "
                "use the same embedding model, or another folder"
            )

    def _maybe_save(self) -> None:
        if self._pending >= self.save_every:
            self.save_index()

    def _matrix(self, blobs: Iterator[bytes] | Any) -> np.ndarray:
        import numpy as np

        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self._dim or 0)

    @staticmethod
    def _rows_by_label(conn: sqlite3.Connection, labels: list[int]) -> list[Any]:
        out: list[Any] = []
        for part in _batches(labels):
            marks = ",".join("?" * len(part))
            out += conn.execute(f"SELECT label, vector FROM vectors WHERE label IN ({marks})", part).fetchall()
        return out


# ----------------------------------------------------------------------------- filters → SQL
def compile_filter(node: Filter) -> tuple[str, list[Any]]:
    """The filter as a SQL boolean over the ``metadata`` JSON column, with its parameters. Every
    value and field path is a bound parameter; each leaf yields 0 or 1 (never NULL), so ``NOT``
    keeps :func:`~maru.rag.filters.matches`' meaning for missing fields."""
    params: list[Any] = []
    return _sql(node, params), params


def narrowing(node: Filter, label: str = "d.label") -> tuple[str, list[Any], bool]:
    """``<label> IN (facets lookups, intersected) AND `` for the leaves that every match must satisfy (the node
    itself, or children of a top-level ``And``) and that the facets index answers: ``eq``/``in``,
    and ``gt``/``gte``/``lt``/``lte`` on a number or a string (a field's bounds in one lookup). A
    superset of the matching rows, to be intersected with the full filter — or, when the third
    value is true, exactly the matching rows (every leaf was answered by the index).

    Facets hold a document's scalar values (strings, numbers; booleans as 0/1, as ``json_extract``
    gives them), each with its own SQLite type. SQLite orders every number before every string, so
    ``value < ''`` keeps a numeric range off strings and ``value >= ''`` a string range off numbers:
    a range then matches what the JSON comparison matches (a string never compares with a number)."""
    leaves = node.children if isinstance(node, And) else (node,)
    lookups: list[str] = []
    params: list[Any] = []
    complete = True
    ranges: dict[tuple[str, bool], list[tuple[str, Any]]] = {}
    for leaf in leaves:
        if not (isinstance(leaf, Compare) and _FIELD.match(leaf.field)):
            complete = False
        elif leaf.op in ("eq", "in"):
            values = leaf.value if leaf.op == "in" else (leaf.value,)
            lookups.append(f"SELECT label FROM facets WHERE field = ? AND value IN ({','.join('?' * len(values))})")
            params += [leaf.field, *(_param(v) for v in values)]
        elif leaf.op in _RANGE and isinstance(leaf.value, int | float | str) and not isinstance(leaf.value, bool):
            ranges.setdefault((leaf.field, isinstance(leaf.value, str)), []).append((leaf.op, leaf.value))
        else:
            complete = False
    for (field, text), bounds in ranges.items():
        conditions = "".join(f" AND value {_RANGE[op]} ?" for op, _ in bounds)
        lookups.append(f"SELECT label FROM facets WHERE field = ?{conditions} AND value {'>=' if text else '<'} ''")
        params += [field, *(value for _, value in bounds)]
    if not lookups:
        return "", [], False
    # One label set, intersected before any row is read: the rows (and vectors) read are the matches.
    return f"{label} IN ({' INTERSECT '.join(lookups)}) AND ", params, complete


_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _sql(node: Filter, params: list[Any]) -> str:
    match node:
        case Compare(field, op, value):
            return _leaf(field, op, value, params)
        case And(children):
            return "(" + " AND ".join(_sql(c, params) for c in children) + ")"
        case Or(children):
            return "(" + " OR ".join(_sql(c, params) for c in children) + ")"
        case Not(child):
            return f"(NOT {_sql(child, params)})"
    raise FilterError(f"not a filter node: {node!r}; build filters with maru.rag.F")


def _param(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _leaf(field: str, op: str, value: Any, params: list[Any]) -> str:
    if not isinstance(field, str) or not _FIELD.match(field):
        raise FilterError(f"filter field {field!r} is not a valid name: use letters, digits, '_' and '.'")
    path = '$."' + field + '"'
    x = "json_extract(metadata, ?)"
    if op in ("eq", "ne"):
        params += [path, _param(value)]
        return f"coalesce({x} {'=' if op == 'eq' else '!='} ?, {0 if op == 'eq' else 1})"
    if op in ("gt", "gte", "lt", "lte"):
        symbol = _RANGE[op]
        kinds = "'text'" if isinstance(value, str) else "'integer', 'real', 'true', 'false'"
        params += [path, path, _param(value)]
        return f"coalesce(json_type(metadata, ?) IN ({kinds}) AND {x} {symbol} ?, 0)"
    if op in ("in", "nin"):
        params.append(path)
        params += [_param(v) for v in value]
        marks = ",".join("?" * len(value))
        return f"coalesce({x} {'IN' if op == 'in' else 'NOT IN'} ({marks}), {0 if op == 'in' else 1})"
    if op == "contains":
        params += [path, path, _param(value)]
        text_case = ""
        if isinstance(value, str):
            params += [path, value]
            text_case = f" WHEN 'text' THEN instr({x}, ?) > 0"
        return (
            "(CASE json_type(metadata, ?) WHEN 'array' THEN EXISTS "
            f"(SELECT 1 FROM json_each(metadata, ?) WHERE value = ?){text_case} ELSE 0 END)"
        )
    raise FilterError(f"unknown filter operator {op!r}")


# ----------------------------------------------------------------------------- small helpers
def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for lo in range(0, len(items), _BATCH):
        yield items[lo : lo + _BATCH]


def _copy(doc: Document) -> Document:
    return Document(doc.text, dict(doc.metadata), doc.id)


def _digest(path: Path) -> str:
    """BLAKE2b (128-bit) of a file's content, as hex."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _intact(file: Path) -> bool:
    """Whether a saved index still has the content its name's digest was taken of."""
    m = _INDEX_FILE.match(file.name)
    try:
        return bool(m and m.group(2) and _digest(file) == m.group(2))
    except OSError:  # removed meanwhile by another process's save
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
