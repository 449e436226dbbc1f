"""``VectorStore``: one interface over every store — add, upsert, delete, get, search (typed filters,
score threshold) and MMR.

A store implements five primitives on numpy arrays (``_upsert``, ``_delete``, ``_get``, ``_search``,
``count``) plus ``field_types``; this base class does the rest once: embedding texts with the store's
:class:`~maru.models.embeddings.Embeddings`, assigning ids, validating filters, thresholds and MMR.

Scores are similarities, higher is better: cosine similarity for normalised vectors.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..._mmr import mmr_select
from ...errors import VectorStoreError
from ..documents import Document, as_documents
from ..filters import Filter, validate

if TYPE_CHECKING:
    import numpy as np

    from ...models.embeddings import Embeddings
    from ..retrievers.vector import VectorRetriever

__all__ = ["Hit", "VectorStore", "mmr_select"]

Hit = tuple[Document, float]


class VectorStore(ABC):
    """Documents with vectors, searchable by similarity under a metadata filter."""

    embeddings: Embeddings | None = None

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        """Insert or replace ``docs`` (every one has an id) with their float32 ``vectors`` (n × dim)."""

    @abstractmethod
    def _delete(self, ids: Sequence[str]) -> int:
        """Remove these ids in one batch; return how many existed."""

    @abstractmethod
    def _get(self, ids: Sequence[str]) -> list[Document]:
        """The stored documents with these ids, in the given order, missing ids skipped."""

    @abstractmethod
    def _search(
        self, vector: np.ndarray, k: int, filter: Filter | None, with_vectors: bool
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        """The ``k`` most similar documents passing ``filter``, best first, with their vectors if asked."""

    @abstractmethod
    def count(self) -> int:
        """How many documents the store holds."""

    @abstractmethod
    def field_types(self) -> dict[str, str]:
        """Metadata field name → :func:`~maru.rag.filters.type_name`, for filter validation."""

    def ids(self) -> Iterator[str]:
        """Every stored id (for audits and tests). Stores override with something cheaper."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its ids")

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing to release
        """Release files and connections."""

    # ------------------------------------------------------------------ public API
    def add(self, docs: Sequence[Document], vectors: Any = None) -> list[str]:
        """Add documents, embedding them unless ``vectors`` are given. Documents without an id get a
        random one. Adding an id that exists replaces it (as :meth:`upsert`)."""
        return self.upsert(docs, vectors)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict[str, Any]] | None = None,
                  ids: Sequence[str] | None = None) -> list[str]:
        metas = metadatas or [{} for _ in texts]
        id_list: Sequence[str | None] = ids if ids is not None else [None] * len(texts)
        docs = [Document(t, dict(m), i) for t, m, i in zip(texts, metas, id_list, strict=True)]
        return self.upsert(docs)

    def upsert(self, docs: Sequence[Document], vectors: Any = None) -> list[str]:
        import numpy as np

        docs = list(as_documents(docs))
        if not docs:
            return []
        stored = [
            Document(d.text, dict(d.metadata), d.id or uuid.uuid4().hex) for d in docs
        ]
        if vectors is None:
            vectors = self._embed([d.text for d in stored])
        arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if arr.ndim != 2 or arr.shape[0] != len(stored):
            raise VectorStoreError(
                f"got {len(stored)} documents but vectors of shape {arr.shape}; pass one vector per document"
            )
        self._upsert(stored, arr)
        return [d.id for d in stored]  # type: ignore[misc]

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        return self._delete(ids) if ids else 0

    def get(self, ids: Sequence[str]) -> list[Document]:
        ids = list(ids)
        return self._get(ids) if ids else []

    def search(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 4,
        *,
        filter: Filter | None = None,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        """The ``k`` most similar documents, best first, as (document, score); ``document.score`` is
        set too. ``score_threshold`` drops hits scoring below it."""
        if k <= 0:
            return []
        self._check_filter(filter)
        rows = self._search(self._query_vector(query), k, filter, False)
        hits = []
        for doc, score, _ in rows:
            if score_threshold is not None and score < score_threshold:
                continue
            doc.score = score
            hits.append((doc, score))
        return hits

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.search(query, k, **kwargs)]

    def mmr_search(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 4,
        *,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Maximal marginal relevance: ``k`` of the ``fetch_k`` nearest, trading relevance
        (``lambda_mult`` = 1) against diversity (0)."""
        import numpy as np

        self._check_filter(filter)
        qv = self._query_vector(query)
        rows = self._search(qv, max(k, fetch_k), filter, True)
        if not rows:
            return []
        cand = np.stack([np.asarray(v, dtype=np.float32) for _, _, v in rows])
        order = mmr_select(qv, cand, k, lambda_mult)
        out = []
        for i in order:
            doc, score, _ = rows[i]
            doc.score = score
            out.append((doc, score))
        return out

    def as_retriever(
        self, *, search_type: str | None = None, search_kwargs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> VectorRetriever:
        """A retriever over this store. Takes maru's keywords (``k``, ``search_type``, ``filter``,
        ``fetch_k``, ``lambda_mult``, ``score_threshold``) or LangChain's ``search_type`` and
        ``search_kwargs={...}`` (a ``{field: value}`` filter dict means all fields equal)."""
        from ..retrievers.vector import VectorRetriever, retriever_options

        return VectorRetriever(self, **retriever_options(search_type, search_kwargs, kwargs))

    # ------------------------------------------------------------------ helpers
    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embeddings is None:
            raise VectorStoreError(
                f"{type(self).__name__} has no embeddings: pass embeddings=... or give vectors explicitly"
            )
        return self.embeddings.embed_array(texts)

    def _query_vector(self, query: str | Sequence[float] | np.ndarray) -> np.ndarray:
        import numpy as np

        if isinstance(query, str):
            if self.embeddings is None:
                raise VectorStoreError(
                    f"{type(self).__name__} has no embeddings to embed a text query: pass a vector"
                )
            return np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        return np.asarray(query, dtype=np.float32)

    def _check_filter(self, filter: Filter | None) -> None:
        if filter is not None:
            if not isinstance(filter, Filter):
                raise TypeError(
                    f"filter must be built with maru.rag.F (a typed tree), got {type(filter).__name__}"
                )
            validate(filter, self.field_types())

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
