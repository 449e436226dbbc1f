"""``VectorRetriever``: a store searched by similarity, MMR or similarity above a threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..documents import Document
from ..filters import Filter
from .base import Retriever

if TYPE_CHECKING:
    from ..stores.base import VectorStore

__all__ = ["VectorRetriever"]

SearchType = Literal["similarity", "mmr", "threshold"]


class VectorRetriever(Retriever):
    def __init__(
        self,
        store: VectorStore,
        *,
        k: int = 4,
        search_type: SearchType = "similarity",
        score_threshold: float | None = None,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
    ) -> None:
        if search_type not in ("similarity", "mmr", "threshold"):
            raise ValueError(f"search_type must be 'similarity', 'mmr' or 'threshold', got {search_type!r}")
        if search_type == "threshold" and score_threshold is None:
            raise ValueError("search_type='threshold' needs score_threshold=... (a similarity, e.g. 0.5)")
        self.store, self.k, self.search_type = store, k, search_type
        self.score_threshold, self.fetch_k, self.lambda_mult, self.filter = (
            score_threshold, fetch_k, lambda_mult, filter,
        )

    def retrieve(self, query: str) -> list[Document]:
        if self.search_type == "mmr":
            hits = self.store.mmr_search(
                query, self.k, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult, filter=self.filter
            )
        else:
            hits = self.store.search(query, self.k, filter=self.filter, score_threshold=self.score_threshold)
        return [doc for doc, _ in hits]
