"""Test helpers for indexing: deterministic fake embeddings, a tiny splitter, a persistent SQLite
vector store, synthetic corpora, and (run as a script) an indexer that kills itself on cue.

Script use (what the crash test runs in a subprocess)::

    python _indexing_support.py STORE_PATH RECORDS_URL CORPUS CLEANUP [local]

``CORPUS`` names a corpus from :func:`corpus`; ``CLEANUP`` is none/incremental/full/scoped; the
fifth argument selects ``LocalStore`` instead of the test store. ``MARU_TEST_CRASH`` = ``store:N``
(SIGKILL halfway through the N-th store write), ``record:N`` (before the N-th record write, after
its store write), ``delete:N`` (after the N-th store delete, before its record delete). Every store
write prints ``upsert N`` so a parent process can kill it from outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from maru.models.embeddings import Embeddings
from maru.rag.documents import Document
from maru.rag.records import RecordManager
from maru.rag.stores.base import VectorStore
from maru.rag.stores.memory import InMemoryStore

DIM = 8


class HashEmbeddings(Embeddings):
    """A vector from the SHA-256 of the text; counts calls and texts embedded."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.texts.extend(texts)
        out = []
        for text in texts:
            raw = hashlib.sha256(text.encode()).digest()[:DIM]
            out.append([b / 255.0 + 0.01 for b in raw])
        return out


MemoryStore = InMemoryStore


class SentenceSplitter:
    """Cuts on ". ": one chunk per sentence, with ``chunk_index``."""

    def split_documents(self, documents: list[Document]) -> list[Document]:
        out = []
        for doc in documents:
            parts = [p.strip() for p in doc.text.split(". ") if p.strip()]
            for i, part in enumerate(parts):
                out.append(Document(part, {**doc.metadata, "chunk_index": i}))
        return out


class SQLiteTestStore(VectorStore):
    """A persistent store in one SQLite file, one transaction per write. Brute-force search."""

    def __init__(self, path: str, embeddings: Embeddings | None = None) -> None:
        self.embeddings = embeddings
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, text TEXT, meta TEXT, vec BLOB)"
        )

    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        rows = [
            (doc.id, doc.text, json.dumps(doc.metadata), vec.astype(np.float32).tobytes())
            for doc, vec in zip(docs, vectors, strict=True)
        ]
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", rows)

    def _delete(self, ids: Sequence[str]) -> int:
        n = 0
        for part in range(0, len(ids), 500):
            chunk = list(ids[part : part + 500])
            marks = ",".join("?" * len(chunk))
            n += self.conn.execute(f"DELETE FROM docs WHERE id IN ({marks})", chunk).rowcount
        return n

    def _get(self, ids: Sequence[str]) -> list[Document]:
        found = {}
        for part in range(0, len(ids), 500):
            chunk = list(ids[part : part + 500])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, text, meta FROM docs WHERE id IN ({marks})"
            for rid, text, meta in self.conn.execute(sql, chunk):
                found[rid] = Document(text, json.loads(meta), rid)
        return [found[i] for i in ids if i in found]

    def _search(self, vector: np.ndarray, k: int, filter: Any, with_vectors: bool) -> list[Any]:
        rows = self.conn.execute("SELECT id, text, meta, vec FROM docs").fetchall()
        scored = []
        for rid, text, meta, blob in rows:
            v = np.frombuffer(blob, dtype=np.float32)
            scored.append((Document(text, json.loads(meta), rid), float(v @ vector), v))
        scored.sort(key=lambda r: -r[1])
        return [(d, s, v if with_vectors else None) for d, s, v in scored[:k]]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    def field_types(self) -> dict[str, str]:
        return {}

    def ids(self) -> Iterator[str]:
        return iter([r[0] for r in self.conn.execute("SELECT id FROM docs")])

    def close(self) -> None:
        self.conn.close()


class CrashHooks(VectorStore):
    """Wraps a store's primitives: prints ``upsert N`` per write; on cue, writes half of the N-th
    batch and dies, or dies right after the N-th delete."""

    upserts = 0
    deletes = 0

    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        self.upserts += 1
        print(f"upsert {self.upserts}", flush=True)
        if _crash("store", self.upserts):
            half = len(docs) // 2
            super()._upsert(docs[:half], vectors[:half])  # type: ignore[safe-super]
            os.kill(os.getpid(), signal.SIGKILL)
        super()._upsert(docs, vectors)  # type: ignore[safe-super]

    def _delete(self, ids: Sequence[str]) -> int:
        self.deletes += 1
        n = super()._delete(ids)  # type: ignore[safe-super]
        if _crash("delete", self.deletes):
            os.kill(os.getpid(), signal.SIGKILL)
        return n


class CrashRecords(RecordManager):
    """A record manager that can kill the process before its N-th upsert."""

    upserts = 0

    def upsert(self, records: Any, time: float) -> None:
        self.upserts += 1
        if _crash("record", self.upserts):
            os.kill(os.getpid(), signal.SIGKILL)
        super().upsert(records, time)


def _crash(kind: str, n: int) -> bool:
    return os.environ.get("MARU_TEST_CRASH") == f"{kind}:{n}"


def corpus(name: str) -> list[Document]:
    """Synthetic corpora of sourced chunks (``s<k>``, ``per`` chunks each, text version ``v``).

    A: 200 sources × 10 (2000 docs). B: A with sources 0–49 edited, 50–99 shrunk to 7 chunks, new
    sources 200–219. B2: B with sources 0–49 shrunk to 5. C: sources 100–219 of B, 150–169 edited,
    new 300–349. D: sources 500–599 only (never seen again)."""
    spec: dict[int, tuple[int, int]] = {}  # source -> (chunks, version)
    a = {s: (10, 0) for s in range(200)}
    b = {**a, **{s: (10, 1) for s in range(50)}, **{s: (7, 0) for s in range(50, 100)}}
    b.update({s: (10, 0) for s in range(200, 220)})
    if name == "A":
        spec = a
    elif name in ("B", "B2"):
        spec = b if name == "B" else {**b, **{s: (5, 1) for s in range(50)}}
    elif name == "C":
        spec = {s: v for s, v in b.items() if s >= 100}
        spec.update({s: (10, 2) for s in range(150, 170)})
        spec.update({s: (10, 0) for s in range(300, 350)})
    elif name == "D":
        spec = {s: (10, 0) for s in range(500, 600)}
    else:
        raise ValueError(name)
    return [
        Document(f"source {s} chunk {i} version {v}", {"source": f"s{s}", "chunk_index": i})
        for s, (n, v) in sorted(spec.items())
        for i in range(n)
    ]


def open_store(path: str, local: bool, hooks: bool = False) -> VectorStore:
    if local:
        from maru.rag.stores.local import LocalStore

        cls: type[Any] = type("CrashLocalStore", (CrashHooks, LocalStore), {}) if hooks else LocalStore
        return cls(path, embeddings=HashEmbeddings())  # type: ignore[no-any-return]
    cls = type("CrashSQLiteStore", (CrashHooks, SQLiteTestStore), {}) if hooks else SQLiteTestStore
    return cls(path, HashEmbeddings())  # type: ignore[no-any-return]


def main(argv: list[str]) -> None:
    from maru.rag.indexing import index

    store_path, records_url, name, cleanup = argv[:4]
    local = len(argv) > 4 and argv[4] == "local"
    store = open_store(store_path, local, hooks=True)
    records = CrashRecords(records_url, namespace="crash")
    result = index(
        corpus(name),
        store,
        records,
        cleanup=None if cleanup == "none" else cleanup,  # type: ignore[arg-type]
        batch_size=100,
        cleanup_batch_size=100,
    )
    print("done", json.dumps(result.as_dict()), flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
