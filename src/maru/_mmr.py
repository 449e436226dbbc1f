"""Maximal marginal relevance, shared by vector-store search (``maru.rag``) and the MMR example
selector (``maru.prompts``): a leaf both import, so neither package has to import the other."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["mmr_select"]


def mmr_select(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indices of ``k`` candidates chosen greedily by maximal marginal relevance (cosine)."""
    import numpy as np

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=-1, keepdims=True)
        return m / np.where(norms == 0, 1, norms)

    c = unit(candidates)
    relevance = c @ unit(query)
    chosen: list[int] = []
    best_sim = np.full(len(c), -np.inf)
    k = min(k, len(c))
    while len(chosen) < k:
        if chosen:
            best_sim = np.maximum(best_sim, c @ c[chosen[-1]])
            score = lambda_mult * relevance - (1 - lambda_mult) * best_sim
        else:
            score = relevance.copy()
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen
