"""A :class:`~maru.rag.knowledge.KnowledgeBase` as ``maru.eval`` runs it: the same answering, with
the same settings, as ``ask``, ``maru ask`` and ``maru serve`` use.

Per question the answer is :meth:`KnowledgeBase.ask` with the served ``k``, ``sentences`` and model;
the retrieval metrics rank the top 10 (``depth``) of the same retriever — hybrid BM25 + dense with
the same fusion — since nDCG@10 needs ten documents whatever ``k`` the answer is written from.
A passage's document id is its metadata ``_id`` / ``id`` / ``doc_id`` or its file name without the
extension (:func:`maru.eval.pipeline.document_id`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..eval.pipeline import Output, ranked_ids

if TYPE_CHECKING:
    from .knowledge import KnowledgeBase

__all__ = ["KnowledgeBasePipeline"]


class KnowledgeBasePipeline:
    """``kb`` answering with ``k`` passages, ``sentences`` quoted sentences (no model) or ``model``."""

    def __init__(self, kb: KnowledgeBase, *, k: int, sentences: int, model: Any) -> None:
        self.kb, self.k, self.sentences, self.model = kb, k, sentences, model

    def config(self) -> dict[str, Any]:
        embeddings = self.kb.embeddings
        return {
            "pipeline": "KnowledgeBase",
            "kb": str(self.kb.path),
            "retriever": type(self.kb.retriever(self.k)).__name__,
            "embeddings": str(getattr(embeddings, "model_name", "") or type(embeddings).__name__),
            "k": self.k,
            "writer": _model_name(self.model) if self.model is not None else f"extractive ({self.sentences} sentences)",
            "min_relevance": self.kb.min_relevance,
        }

    def run(self, question: str, *, depth: int, answer: bool) -> Output:
        ranked = ranked_ids(self.kb.retriever(max(depth, self.k)).invoke(question))[:depth]
        if not answer:
            return Output(ranked)
        said = self.kb.ask(question, k=self.k, model=self.model, sentences=self.sentences)
        return Output(ranked, said.text, [c.text for c in said.citations])


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", "") or type(model).__name__)
