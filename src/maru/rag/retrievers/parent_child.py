"""``ParentChildRetriever``: search small chunks, return the larger documents they came from.

Small chunks embed precisely (one idea per vector); the model answers better from the surrounding
section. Children live in a vector store with their parent's id in metadata; parents live in a
docstore (anything with ``mget(ids) -> list[Document | None]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..documents import Document
from .base import Retriever

if TYPE_CHECKING:
    from ..filters import Filter
    from ..stores.base import VectorStore

__all__ = ["ParentChildRetriever", "ParentStore"]


class ParentStore(Protocol):
    """What the retriever needs of a docstore."""

    def mget(self, ids: Sequence[str]) -> list[Document | None]: ...


class ParentChildRetriever(Retriever):
    """The ``k`` parents of the best-matching children, in the order of each parent's best child;
    a parent's ``score`` is its best child's. Up to ``fetch_k`` children are searched; when they
    name fewer than ``k`` distinct parents the search widens (up to 4 × ``fetch_k``). A child
    without ``parent_id_key`` in its metadata stands for itself; a parent id the docstore does not
    know is skipped."""

    def __init__(
        self,
        store: VectorStore,
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
        self.store, self.docstore = store, docstore
        self.k, self.fetch_k = k, max(fetch_k, k)
        self.parent_id_key, self.filter = parent_id_key, filter

    def _best_parents(self, query: str) -> list[tuple[str | None, Document, float]]:
        """(parent id or None for an orphan child, the child, its score), best first, one per parent."""
        fetch = self.fetch_k
        while True:
            hits = self.store.search(query, fetch, filter=self.filter)
            seen: set[str] = set()
            picked: list[tuple[str | None, Document, float]] = []
            for child, score in hits:
                pid = child.metadata.get(self.parent_id_key)
                key = f"p:{pid}" if pid is not None else f"c:{child.id or child.text}"
                if key in seen:
                    continue
                seen.add(key)
                picked.append((str(pid) if pid is not None else None, child, score))
            if len(picked) >= self.k or len(hits) < fetch or fetch >= 4 * self.fetch_k:
                return picked
            fetch *= 2

    def retrieve(self, query: str) -> list[Document]:
        picked = self._best_parents(query)
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
