"""``ParentChildRetriever``: search small chunks, return the larger documents they came from.

Small chunks embed precisely (one idea per vector); the model answers better from the surrounding
section. Children live in a vector store with their parent's id in metadata; parents live in a
docstore (anything with ``mget(ids) -> list[Document | None]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ...core.config import RunConfig
from ..documents import Document
from ..stores.base import VectorStore
from .base import QueryRetriever, Retriever, fetch_documents, query_runnable, query_text

if TYPE_CHECKING:
    from ..filters import Filter

__all__ = ["ParentChildRetriever", "ParentStore"]


class ParentStore(Protocol):
    """What the retriever needs of a docstore."""

    def mget(self, ids: Sequence[str]) -> list[Document | None]: ...


class ParentChildRetriever(Retriever):
    """The ``k`` parents of the best-matching children, in the order of each parent's best child;
    a parent's ``score`` is its best child's. Up to ``fetch_k`` children are searched; when they
    name fewer than ``k`` distinct parents the search widens (up to 4 × ``fetch_k``). A child
    without ``parent_id_key`` in its metadata stands for itself; a parent id the docstore does not
    know is skipped.

    ``store`` holds the children: a vector store, or any runnable (or function) that maps the query
    to child documents — a retriever wrapped in ``with_retry()``, say. Such a child retriever runs
    as a child run in traces and returns what it returns (no widening, ``fetch_k`` unused)."""

    def __init__(
        self,
        store: VectorStore | QueryRetriever | Any,
        docstore: ParentStore,
        *,
        k: int = 4,
        fetch_k: int = 20,
        parent_id_key: str = "parent_id",
        filter: Filter | None = None,
    ) -> None:
        if not callable(getattr(docstore, "mget", None)):
            raise TypeError(
                f"docstore must have mget(ids) -> list[Document | None], got {type(docstore).__name__}"
            )
        if k <= 0 or fetch_k <= 0:
            raise ValueError(f"k and fetch_k must be positive, got k={k}, fetch_k={fetch_k}")
        if filter is not None and not isinstance(store, VectorStore):
            raise ValueError("filter= applies to a vector store; give the child retriever its own filter")
        self.store = store if isinstance(store, VectorStore) else query_runnable(store, "store")
        self.docstore = docstore
        self.k, self.fetch_k = k, max(fetch_k, k)
        self.parent_id_key, self.filter = parent_id_key, filter

    def _best_parents(self, input: Any, config: RunConfig | None) -> list[tuple[str | None, Document, float]]:
        """(parent id or None for an orphan child, the child, its score), best first, one per parent."""
        store = self.store
        if not isinstance(store, VectorStore):
            children = fetch_documents(store, input, config)
            return self._one_per_parent([(child, child.score or 0.0) for child in children])
        query = query_text(input, self.name)
        fetch = self.fetch_k
        while True:
            hits = store.search(query, fetch, filter=self.filter)
            picked = self._one_per_parent(hits)
            if len(picked) >= self.k or len(hits) < fetch or fetch >= 4 * self.fetch_k:
                return picked
            fetch *= 2

    def _one_per_parent(self, hits: Sequence[tuple[Document, float]]) -> list[tuple[str | None, Document, float]]:
        seen: set[str] = set()
        picked: list[tuple[str | None, Document, float]] = []
        for child, score in hits:
            pid = child.metadata.get(self.parent_id_key)
            key = f"p:{pid}" if pid is not None else f"c:{child.id or child.text}"
            if key in seen:
                continue
            seen.add(key)
            picked.append((str(pid) if pid is not None else None, child, score))
        return picked

    def retrieve(self, query: str) -> list[Document]:
        return self._retrieve(query, None)

    def _retrieve(self, input: Any, config: RunConfig | None) -> list[Document]:
        picked = self._best_parents(input, config)
        ids = [pid for pid, _, _ in picked if pid is not None]
        parents = dict(zip(ids, self.docstore.mget(ids), strict=True)) if ids else {}
        out: list[Document] = []
        for pid, child, score in picked:
            doc = child if pid is None else parents.get(pid)
            if doc is None:
                continue
            out.append(Document(doc.text, dict(doc.metadata), doc.id if pid is None else (doc.id or pid), score))
            if len(out) == self.k:
                break
        return out
