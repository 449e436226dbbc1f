"""How well retrieved passages can answer a question, and citing what an answer used.

Retrieval always returns *something*: asked "What is the capital of France?" over a project's
docs, the top passages are about nDCG and budgets, and a model prompted with them answers anyway.
:func:`relevance` scores each passage against the question — the cosine of their embeddings plus
the share of the question's index terms the passage contains (terms carry languages the embedding
model does not know, such as Korean for the English MiniLM) — so the caller can say "not found in
these documents" below a threshold instead of answering from unrelated text.

A small model often forgets the ``[n]`` markers it was asked for; :func:`ensure_cited` adds the
marker of the passage whose terms the answer shares most, so every answer points at its source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models.embeddings import Embeddings

__all__ = ["NOT_FOUND", "ensure_cited", "relevance"]

NOT_FOUND = "Not found in these documents."
_TERM_WEIGHT = 0.5
_CITATION = re.compile(r"\[\d+\]")


def relevance(question: str, passages: Sequence[str], embeddings: Embeddings) -> list[float]:
    """One score per passage: cosine similarity + 0.5 × the share of the question's terms it holds."""
    if not passages:
        return []
    import numpy as np

    from .lexical import analyze

    vectors = np.asarray(embeddings.embed_documents(list(passages)), dtype=np.float32)
    query = np.asarray(embeddings.embed_query(question), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
    cosine = (vectors @ query) / np.where(norms == 0, 1, norms)
    terms = set(analyze(question))
    shares = [len(terms & set(analyze(p))) / len(terms) if terms else 0.0 for p in passages]
    return [float(c) + _TERM_WEIGHT * s for c, s in zip(cosine, shares, strict=True)]


def ensure_cited(answer: str, passages: Sequence[str]) -> str:
    """``answer`` with a ``[n]`` marker (1-based) for the passage it shares most terms with, when it
    cites none; unchanged when it already cites, or says nothing."""
    if not answer.strip() or not passages or _CITATION.search(answer):
        return answer
    from .lexical import analyze

    words = set(analyze(answer))
    shared = [len(words & set(analyze(p))) for p in passages]
    best = max(range(len(passages)), key=lambda i: (shared[i], -i))
    return f"{answer.rstrip()} [{best + 1}]"
