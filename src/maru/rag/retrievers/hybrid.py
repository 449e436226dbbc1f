"""``HybridRetriever``: several retrievers (dense and BM25, typically) fused by weighted reciprocal
rank fusion, with per-query weights that keep a weak signal from dragging a strong one down.

Plain RRF treats every ranking as equally informative for every query. It is not: the default
embedding model (all-MiniLM-L6-v2) is English-only, so on a Korean query its ranking is close to
noise, and RRF then pushes BM25's correct hit down the list. ``adaptive=True`` (the default) looks at
each ranking's scores for this query: when its best score stands well above its 20th the retriever
recognises something; when its scores are flat it is guessing, and its weight shrinks relative to
the most decisive retriever. The rule and its exponent come from measurements
(``bench/retrieval_quality.py``) on Cranfield, XQuAD and KorQuAD.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...core.config import RunConfig
from ...core.executor import run_bounded
from ..documents import Document
from .base import QueryRetriever, Retriever, fetch_documents, query_runnable

__all__ = [
    "AdaptiveWeighting",
    "HybridRetriever",
    "doc_key",
    "reciprocal_rank_fusion",
    "score_spread",
]


def doc_key(doc: Document) -> str:
    """What identifies a document across rankings: its id, else its text."""
    return f"id:{doc.id}" if doc.id is not None else f"text:{doc.text}"


def score_spread(scores: Sequence[float | None], depth: int = 20, floor: float = 0.0) -> float | None:
    """How far a ranking's best score stands above its score at rank ``depth`` (or its last),
    relative to the best, both measured from ``floor``: ``(s_1 - s_depth) / (s_1 - floor)``. ``None``
    when the ranking carries no scores or fewer than two. Meaningful for scores with a natural zero,
    as BM25 and most similarities have (E5's is about 0.7: its ``similarity_floor``): a model that
    cannot read the query gives every document about the same similarity (spread near 0), while a
    retriever that recognises the answer puts it far above the rest."""
    vals = list(scores[:depth])
    if len(vals) < 2 or any(v is None for v in vals):
        return None
    top, last = float(vals[0]) - floor, float(vals[-1]) - floor  # type: ignore[arg-type]
    if top <= 0:
        return 0.0
    return max(0.0, (top - last) / top)


@dataclass(frozen=True, slots=True)
class AdaptiveWeighting:
    """Per-query weight multipliers from each ranking's :func:`score_spread`, relative to the most
    spread-out ranking of the same query: ``(spread / max_spread) ** power`` (at least ``floor``).
    A ranking without scores keeps multiplier 1.

    The default ``power=4`` was chosen on Cranfield, XQuAD and KorQuAD with all-MiniLM-L6-v2 and BM25
    (``bench/retrieval_quality.py``): it keeps hybrid at or above the best single retriever on all
    three, where plain RRF loses 0.36–0.42 nDCG@10 on Korean to the English-only embeddings."""

    power: float = 4.0
    depth: int = 20
    floor: float = 0.0

    def factors(
        self, rankings_scores: Sequence[Sequence[float | None]], floors: Sequence[float] | None = None
    ) -> list[float]:
        """``floors``: each ranking's score floor (see ``Embeddings.similarity_floor``), default 0."""
        floors = floors if floors is not None else [0.0] * len(rankings_scores)
        spreads = [score_spread(s, self.depth, f) for s, f in zip(rankings_scores, floors, strict=True)]
        known = [x for x in spreads if x is not None]
        best = max(known, default=0.0)
        if best <= 0:
            return [1.0] * len(spreads)
        return [
            1.0 if x is None else max(self.floor, (x / best) ** self.power) for x in spreads
        ]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Document]],
    *,
    weights: Sequence[float] | None = None,
    rrf_k: int = 60,
    k: int | None = None,
) -> list[Document]:
    """Weighted RRF: each document scores ``sum(w_i / (rrf_k + rank_i))`` over the rankings that
    hold it (rank from 1); duplicates are merged by id (or text). The returned copies carry the
    fused score; order is by fused score, ties by first appearance."""
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"got {len(weights)} weights for {len(rankings)} rankings; pass one per ranking")
    fused: dict[str, float] = {}
    first: dict[str, Document] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for rank, doc in enumerate(ranking, start=1):
            key = doc_key(doc)
            if key in seen:  # a ranking votes once per document
                continue
            seen.add(key)
            fused[key] = fused.get(key, 0.0) + w / (rrf_k + rank)
            first.setdefault(key, doc)
    order = sorted(fused, key=fused.__getitem__, reverse=True)  # stable: ties keep first appearance
    if k is not None:
        order = order[:k]
    return [
        Document(first[key].text, dict(first[key].metadata), first[key].id, fused[key]) for key in order
    ]


def _reads(retriever: QueryRetriever, query: Any) -> bool:
    """A retriever's own word on whether it can read ``query`` (true when it has none to give)."""
    reads = getattr(retriever, "reads", None)
    if reads is None or not isinstance(query, (str, dict)):
        return True
    text = query if isinstance(query, str) else query.get("query", query.get("question"))
    return not isinstance(text, str) or bool(reads(text))


class HybridRetriever(Retriever):
    """Runs ``retrievers`` concurrently on the shared pool, each asked for ``fetch_k`` documents
    (retrievers with an integer ``k`` attribute are copied with ``k = fetch_k``), and fuses their
    rankings by weighted RRF into the top ``k``. A retriever is any runnable (or function) that maps
    the query to documents; each runs as a child run of this one.

    ``weights`` are the base weights (default equal). With ``adaptive=True`` each is multiplied per
    query by :class:`AdaptiveWeighting` ``.factors`` of the rankings' scores, so a retriever whose
    scores are flat for this query (it is guessing) counts for little next to one whose top hits
    stand out.
    """

    def __init__(
        self,
        retrievers: Sequence[QueryRetriever | Any],
        k: int = 4,
        weights: Sequence[float] | None = None,
        rrf_k: int = 60,
        fetch_k: int | None = None,
        *,
        adaptive: bool = True,
        weighting: AdaptiveWeighting | None = None,
    ) -> None:
        if not retrievers:
            raise ValueError("HybridRetriever needs at least one retriever")
        if weights is not None and len(weights) != len(retrievers):
            raise ValueError(
                f"got {len(weights)} weights for {len(retrievers)} retrievers; pass one per retriever"
            )
        if weights is not None and any(w < 0 for w in weights):
            raise ValueError(f"weights must be >= 0, got {list(weights)}")
        self.retrievers = [query_runnable(r, "each of retrievers") for r in retrievers]
        self.k = k
        self.weights = list(weights) if weights is not None else [1.0] * len(self.retrievers)
        self.rrf_k = rrf_k
        self.fetch_k = fetch_k if fetch_k is not None else max(20, 4 * k)
        self.adaptive = adaptive
        self.weighting = weighting or AdaptiveWeighting()
        self._fetchers = [self._with_k(r, self.fetch_k) for r in self.retrievers]

    @staticmethod
    def _with_k(retriever: QueryRetriever, k: int) -> QueryRetriever:
        if isinstance(getattr(retriever, "k", None), int) and retriever.k < k:  # type: ignore[attr-defined]
            clone = copy.copy(retriever)
            clone.k = k  # type: ignore[attr-defined]
            return clone
        return retriever

    def rankings(self, query: Any, config: RunConfig | None = None) -> list[list[Document]]:
        """Each retriever's ranking for ``query`` (or the chain's input holding it), fetched
        concurrently. A retriever that says it cannot read the query (``reads(query)`` is false:
        an English-only embedding model and a Korean question) is not run; its ranking is empty."""
        readable = [_reads(r, query) for r in self._fetchers]
        fetchers = [r for r, ok in zip(self._fetchers, readable, strict=True) if ok]
        results = run_bounded(lambda i: fetch_documents(fetchers[i], query, config), len(fetchers), None)
        fetched = iter(results)
        out: list[list[Document]] = []
        for ok in readable:
            if not ok:
                out.append([])
                continue
            done, value = next(fetched)
            if not done:
                raise value
            out.append(value)
        return out

    def effective_weights(self, rankings: Sequence[Sequence[Document]]) -> list[float]:
        """The base weights, scaled per ranking by its confidence when ``adaptive``."""
        if not self.adaptive:
            return list(self.weights)
        floors = [float(getattr(r, "score_floor", 0.0)) for r in self._fetchers]
        factors = self.weighting.factors([[d.score for d in ranking] for ranking in rankings], floors)
        return [w * f for w, f in zip(self.weights, factors, strict=True)]

    def retrieve(self, query: str) -> list[Document]:
        return self._retrieve(query, None)

    def _retrieve(self, input: Any, config: RunConfig | None) -> list[Document]:
        rankings = self.rankings(input, config)
        return reciprocal_rank_fusion(
            rankings, weights=self.effective_weights(rankings), rrf_k=self.rrf_k, k=self.k
        )
