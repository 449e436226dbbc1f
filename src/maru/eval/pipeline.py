"""What an experiment runs: a pipeline that, for a question, retrieves ranked documents and/or
writes an answer citing passages as ``[n]``.

:class:`Pipeline` is the protocol; ``KnowledgeBase`` provides one for its served settings
(:meth:`maru.rag.knowledge.KnowledgeBase.evaluate`). :func:`as_pipeline` also takes any runnable or
function of the question — a retriever (documents out), a chain (text out), or a step returning
``{"answer", "documents"}`` — so one experiment API covers all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

__all__ = ["Output", "Pipeline", "as_pipeline", "document_id", "ranked_ids"]

_ID_KEYS = ("_id", "id", "doc_id")


@dataclass(slots=True)
class Output:
    """One question's result: ``ranked`` document ids (best first, each once), the ``answer`` (or
    ``None``) and the ``passages`` it was written from (passage ``n`` is ``passages[n - 1]``)."""

    ranked: list[str] = field(default_factory=list)
    answer: str | None = None
    passages: list[str] = field(default_factory=list)


@runtime_checkable
class Pipeline(Protocol):
    def config(self) -> dict[str, Any]:
        """The settings that make its results what they are (stored with the experiment)."""
        ...

    def run(self, question: str, *, depth: int, answer: bool) -> Output:
        """Retrieve ``depth`` documents and, when ``answer``, write the answer."""
        ...


def document_id(doc: Any) -> str:
    """A retrieved document's id: its metadata ``_id``, ``id`` or ``doc_id``, else the file name of
    its ``source`` without the extension (``maru ingest`` of ``<id>.txt`` files), else its text.
    A plain string is taken as the id itself."""
    if isinstance(doc, str):
        return doc
    metadata = getattr(doc, "metadata", None) or {}
    for key in _ID_KEYS:
        if metadata.get(key) not in (None, ""):
            return str(metadata[key])
    source = metadata.get("source")
    if source:
        return PurePath(str(source)).stem
    return str(getattr(doc, "text", getattr(doc, "page_content", doc)))


def ranked_ids(docs: Sequence[Any]) -> list[str]:
    """Document ids best first, each once: several passages of one document count at its best rank."""
    return list(dict.fromkeys(document_id(d) for d in docs))


def as_pipeline(target: Any) -> Pipeline:
    """``target`` as a pipeline: a :class:`Pipeline` as it is; an object with
    ``evaluation_pipeline()`` (a knowledge base) through it; any runnable or function of the
    question through :class:`_StepPipeline`."""
    if isinstance(target, Pipeline):
        return target
    if hasattr(target, "evaluation_pipeline"):
        pipeline: Pipeline = target.evaluation_pipeline()
        return pipeline
    if hasattr(target, "invoke") or callable(target):
        return _StepPipeline(target)
    raise TypeError(f"cannot evaluate a {type(target).__name__}: give a KnowledgeBase, a retriever, a runnable or a function")


class _StepPipeline:
    """A runnable or function of the question: documents out are the ranking (and the passages),
    text out is the answer, a mapping may give ``answer`` and ``documents`` (or ``citations``)."""

    def __init__(self, step: Any) -> None:
        self.step = step
        self._call: Callable[[str], Any] = step.invoke if hasattr(step, "invoke") else step

    def config(self) -> dict[str, Any]:
        name = getattr(self.step, "name", None) or getattr(self.step, "__qualname__", type(self.step).__name__)
        return {"pipeline": str(name), "k": getattr(self.step, "k", None)}

    def run(self, question: str, *, depth: int, answer: bool) -> Output:
        result = self._call(question)
        if isinstance(result, str):
            return Output(answer=result)
        if isinstance(result, Mapping):
            docs = list(result.get("documents") or result.get("citations") or ())
            text = result.get("answer")
            return Output(ranked_ids(docs)[:depth], None if text is None else str(text), _texts(docs))
        docs = list(result)
        return Output(ranked_ids(docs)[:depth], None, _texts(docs))


def _texts(docs: Sequence[Any]) -> list[str]:
    return [d if isinstance(d, str) else str(getattr(d, "text", getattr(d, "page_content", ""))) for d in docs]
