"""``DocStore``: documents by id, without vectors — where parent-child indexing keeps the parents
whose children sit in a vector store, so a retriever can return the larger passage.

``InMemoryDocStore`` is a dict (tests, small sets); ``SQLDocStore`` keeps text and metadata (JSON)
in any SQL database SQLAlchemy reaches (SQLite by default, beside the record manager).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from .documents import Document
from .records import NamespacedTable, chunks, create_tables, make_engine, upsert_rows

__all__ = ["DocStore", "InMemoryDocStore", "SQLDocStore"]


class DocStore(ABC):
    """A key-value store of documents keyed by their ``id``."""

    @abstractmethod
    def mset(self, docs: Sequence[Document]) -> None:
        """Store ``docs`` (every one must have an id), replacing documents with the same id."""

    @abstractmethod
    def mget(self, ids: Sequence[str]) -> list[Document | None]:
        """The documents with these ids, in order, ``None`` where an id is unknown."""

    @abstractmethod
    def mdelete(self, ids: Sequence[str]) -> int:
        """Remove these ids; return how many existed."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored id."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release files and connections."""

    @staticmethod
    def _ids_of(docs: Sequence[Document]) -> list[str]:
        ids = [d.id for d in docs]
        missing = sum(1 for i in ids if not i)
        if missing:
            raise ValueError(
                f"{missing} of {len(docs)} documents have no id; a docstore keys documents by id, "
                "so set Document.id before mset"
            )
        return ids  # type: ignore[return-value]


class InMemoryDocStore(DocStore):
    """Documents in a dict (copies in, copies out)."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def mset(self, docs: Sequence[Document]) -> None:
        for key, doc in zip(self._ids_of(docs), docs, strict=True):
            self._docs[key] = Document(doc.text, dict(doc.metadata), key)

    def mget(self, ids: Sequence[str]) -> list[Document | None]:
        out: list[Document | None] = []
        for key in ids:
            doc = self._docs.get(key)
            out.append(None if doc is None else Document(doc.text, dict(doc.metadata), key))
        return out

    def mdelete(self, ids: Sequence[str]) -> int:
        return sum(1 for key in set(ids) if self._docs.pop(key, None) is not None)

    def keys(self) -> Iterator[str]:
        return iter(list(self._docs))

    def __len__(self) -> int:
        return len(self._docs)


class SQLDocStore(NamespacedTable, DocStore):
    """Documents in table ``maru_docstore`` (namespace, id, text, metadata JSON) of the database at
    ``url``; ``namespace`` separates collections sharing one database."""

    def __init__(self, url: str = "sqlite:///maru-docstore.db", namespace: str = "default") -> None:
        import sqlalchemy as sa

        self.url, self.namespace = url, namespace
        self._engine = make_engine(url, what="the docstore")
        meta = sa.MetaData()
        self._t = sa.Table(
            "maru_docstore",
            meta,
            sa.Column("namespace", sa.String(255), primary_key=True),
            sa.Column("id", sa.String(512), primary_key=True),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("metadata", sa.Text, nullable=False),
        )
        create_tables(self._engine, meta, "docstore")

    def mset(self, docs: Sequence[Document]) -> None:
        ids = self._ids_of(docs)
        rows = [
            {
                "namespace": self.namespace,
                "id": key,
                "text": doc.text,
                "metadata": json.dumps(doc.metadata, default=str, ensure_ascii=False),
            }
            for key, doc in zip(ids, docs, strict=True)
        ]
        rows = list({r["id"]: r for r in rows}.values())  # one row per id: the last wins
        with self._engine.begin() as conn:
            for part in chunks(rows):
                upsert_rows(conn, self._t, list(part), ("namespace", "id"))

    def mget(self, ids: Sequence[str]) -> list[Document | None]:
        import sqlalchemy as sa

        t = self._t
        found: dict[str, Document] = {}
        with self._engine.connect() as conn:
            for part in chunks(list(dict.fromkeys(ids))):
                rows = conn.execute(
                    sa.select(t.c.id, t.c.text, t.c.metadata).where(
                        t.c.namespace == self.namespace, t.c.id.in_(part)
                    )
                )
                for key, text, meta in rows:
                    found[key] = Document(text, json.loads(meta), key)
        return [
            None if (d := found.get(key)) is None else Document(d.text, dict(d.metadata), key)
            for key in ids
        ]

    def mdelete(self, ids: Sequence[str]) -> int:
        import sqlalchemy as sa

        t = self._t
        gone = 0
        with self._engine.begin() as conn:
            for part in chunks(list(dict.fromkeys(ids))):
                result = conn.execute(
                    sa.delete(t).where(t.c.namespace == self.namespace, t.c.id.in_(part))
                )
                gone += result.rowcount or 0
        return gone

    def keys(self) -> Iterator[str]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            keys = list(
                conn.execute(
                    sa.select(self._t.c.id).where(self._t.c.namespace == self.namespace)
                ).scalars()
            )
        return iter(keys)

    def __len__(self) -> int:
        return self._rows_in_namespace()

