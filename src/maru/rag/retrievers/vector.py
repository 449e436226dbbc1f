"""``VectorRetriever``: a store searched by similarity, MMR or similarity above a threshold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ...errors import FilterError
from ..documents import Document
from ..filters import F, Filter
from .base import Retriever

if TYPE_CHECKING:
    from ..stores.base import VectorStore

__all__ = ["VectorRetriever", "retriever_options"]

SearchType = Literal["similarity", "mmr", "threshold"]

_LANGCHAIN_SEARCH_TYPES = {"similarity_score_threshold": "threshold"}
_SEARCH_KWARGS = ("k", "filter", "fetch_k", "lambda_mult", "score_threshold")


def retriever_options(
    search_type: str | None, search_kwargs: Mapping[str, Any] | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The :class:`VectorRetriever` keywords for LangChain's ``as_retriever(search_type=...,
    search_kwargs={...})`` plus maru's own keywords, so code written for either works."""
    merged = dict(options)
    if search_type is not None:
        merged["search_type"] = _LANGCHAIN_SEARCH_TYPES.get(search_type, search_type)
    for key, value in (search_kwargs or {}).items():
        if key not in _SEARCH_KWARGS:
            raise TypeError(
                f"as_retriever: search_kwargs has {key!r}, which a vector retriever does not take; "
                f"it takes {', '.join(_SEARCH_KWARGS)}"
            )
        if key in merged:
            raise TypeError(f"as_retriever: {key!r} is given twice, as {key}= and in search_kwargs")
        merged[key] = value
    if isinstance(merged.get("filter"), Mapping):
        merged["filter"] = equality_filter(merged["filter"])
    return merged


def equality_filter(fields: Mapping[str, Any]) -> Filter | None:
    """LangChain's ``{"field": value, ...}`` filter as maru's typed filter (all fields equal)."""
    leaves = []
    for name, value in fields.items():
        if not isinstance(value, str | int | float | bool):
            raise FilterError(
                f"filter {dict(fields)!r}: only {{field: value}} equality dicts are translated; build "
                "other filters with maru.rag.F (F.gt('year', 2000), F.in_('lang', ['ko', 'en']), & and |)"
            )
        leaves.append(F.eq(name, value))
    if not leaves:
        return None
    combined: Filter = leaves[0]
    for leaf in leaves[1:]:
        combined = combined & leaf
    return combined


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
            raise ValueError(
                "search_type must be 'similarity', 'mmr' or 'threshold' (LangChain's "
                f"'similarity_score_threshold'), got {search_type!r}"
            )
        if search_type == "threshold" and score_threshold is None:
            raise ValueError("search_type='threshold' needs score_threshold=... (a similarity, e.g. 0.5)")
        self.store, self.k, self.search_type = store, k, search_type
        self.score_threshold, self.fetch_k, self.lambda_mult, self.filter = (
            score_threshold, fetch_k, lambda_mult, filter,
        )

    @property
    def score_floor(self) -> float:
        """The similarity unrelated documents still get (the embedding model's ``similarity_floor``):
        where a hybrid retriever measures this ranking's confidence from."""
        return float(getattr(self.store.embeddings, "similarity_floor", 0.0))

    def reads(self, query: str) -> bool:
        """Whether the store's embedding model can read ``query`` (see ``Embeddings.languages``):
        a hybrid retriever leaves this ranking out of the fusion when it cannot."""
        languages = getattr(self.store.embeddings, "languages", None)
        if languages is None:
            return True
        from ..lexical import detect_language

        return detect_language(query) in languages

    def retrieve(self, query: str) -> list[Document]:
        if self.search_type == "mmr":
            hits = self.store.mmr_search(
                query, self.k, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult, filter=self.filter
            )
        else:
            hits = self.store.search(query, self.k, filter=self.filter, score_threshold=self.score_threshold)
        return [doc for doc, _ in hits]
