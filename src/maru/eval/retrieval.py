"""Retrieval metrics of one ranked list against graded relevance judgements (BEIR's definitions).

``ranked`` is the list of document ids a retriever returned, best first, each id once (a pipeline
that returns several passages of one document keeps the document's first, best rank). ``relevant``
maps the relevant document ids to grades (1 when not graded); grade 0 means not relevant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["hit_at_1", "mrr", "ndcg_at_k", "recall_at_k", "retrieval_scores"]

RECALL_CUTOFFS = (1, 5, 10)
NDCG_CUTOFF = 10
DEPTH = max(*RECALL_CUTOFFS, NDCG_CUTOFF)
"""How many documents a question's retrieval returns for scoring."""


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int) -> float:
    """The share of the relevant documents found in the top ``k``."""
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int = NDCG_CUTOFF) -> float:
    """Normalised discounted cumulative gain: gain = grade, discount = log2(rank + 1)."""
    dcg = sum(relevant.get(doc, 0.0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: Sequence[str], relevant: Mapping[str, float], k: int = DEPTH) -> float:
    """1 / rank of the first relevant document in the top ``k`` (0 when none is there)."""
    for rank, doc in enumerate(ranked[:k], 1):
        if relevant.get(doc, 0.0) > 0:
            return 1.0 / rank
    return 0.0


def hit_at_1(ranked: Sequence[str], relevant: Mapping[str, float]) -> float:
    """1 when the first document is relevant."""
    return 1.0 if ranked and relevant.get(ranked[0], 0.0) > 0 else 0.0


def retrieval_scores(ranked: Sequence[str], relevant: Mapping[str, float]) -> dict[str, float]:
    """Every retrieval metric of one question, by the names experiments store."""
    scores = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in RECALL_CUTOFFS}
    scores[f"ndcg@{NDCG_CUTOFF}"] = ndcg_at_k(ranked, relevant, NDCG_CUTOFF)
    scores["mrr"] = mrr(ranked, relevant)
    scores["hit@1"] = hit_at_1(ranked, relevant)
    return scores
