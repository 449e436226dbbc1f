"""``Retriever``: a runnable from a query string to a ranked list of documents.

Composite retrievers (hybrid, compression, parent-child, multi-query) build on *any* runnable that
maps a query to documents, not only on ``Retriever`` subclasses: a retriever wrapped in
``with_retry()``, a ``HistoryAwareRetriever`` or a plain function will do (:func:`query_runnable`).
They call it through the runtime (:func:`fetch_documents`), so each child retrieval is a child run
in traces and gets the caller's config.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from ...core.config import RunConfig
from ...core.runnable import Runnable, coerce
from ..documents import Document

__all__ = ["QueryRetriever", "Retriever", "fetch_documents", "query_runnable", "query_text"]

QueryRetriever = Runnable[Any, list[Document]]
"""What a composite retriever builds on: any runnable from a query to documents."""


def query_text(input: Any, who: str) -> str:
    """The query in a retriever's input: a string, or ``{"query": ...}`` / ``{"question": ...}``
    from a chain."""
    if isinstance(input, dict):
        input = input.get("query", input.get("question", input))
    if not isinstance(input, str):
        raise TypeError(f"{who} takes a query string (or a dict with 'query'), got {type(input).__name__}")
    return input


def query_runnable(retriever: Runnable[Any, Any] | Callable[[str], Any], role: str = "retriever") -> QueryRetriever:
    """``retriever`` as a step a composite can call: a runnable as it is, a function wrapped."""
    if isinstance(retriever, Runnable) or callable(retriever):
        return coerce(retriever)
    raise TypeError(
        f"{role} must be a retriever, or another runnable or function that maps a query to "
        f"documents (a with_retry() wrapper, a HistoryAwareRetriever …), got {type(retriever).__name__}"
    )


def fetch_documents(retriever: QueryRetriever, input: Any, config: RunConfig | None = None) -> list[Document]:
    """Run ``retriever`` on ``input`` through the runtime (a child run in traces) and check that it
    answered with documents."""
    docs = retriever.invoke(input, config)
    if not isinstance(docs, list) or not all(isinstance(doc, Document) for doc in docs):
        got = type(docs).__name__ if not isinstance(docs, list) else "a list holding other things"
        raise TypeError(
            f"retriever {retriever.name!r} returned {got}; a retriever returns a list of Documents "
            "(maru.rag.Document)"
        )
    return docs


class Retriever(Runnable[str, list[Document]]):
    """Subclasses implement :meth:`retrieve`. Being a runnable, a retriever composes with ``|``,
    batches on the shared pool and shows up in traces with kind ``retriever``.

    A composite that calls other retrievers overrides :meth:`_retrieve` instead, to hand them the
    run's config (its ``retrieve`` then calls ``_retrieve(query, None)``)."""

    kind = "retriever"
    io_bound = True

    @abstractmethod
    def retrieve(self, query: str) -> list[Document]:
        """The documents relevant to ``query``, best first (``document.score`` set where known)."""

    def _retrieve(self, input: Any, config: RunConfig | None) -> list[Document]:
        """What ``invoke`` runs. ``input`` is the query string or the chain's dict holding it."""
        return self.retrieve(query_text(input, self.name))

    def _invoke(self, input: str, config: RunConfig | None = None, **kwargs: Any) -> list[Document]:
        return self._retrieve(input, config)

    # LangChain's name for the same call.
    def get_relevant_documents(self, query: str) -> list[Document]:
        return self.retrieve(query)
