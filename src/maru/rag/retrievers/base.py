"""``Retriever``: a runnable from a query string to a ranked list of documents."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from ...core.config import RunConfig
from ...core.runnable import Runnable
from ..documents import Document

__all__ = ["Retriever"]


class Retriever(Runnable[str, list[Document]]):
    """Subclasses implement :meth:`retrieve`. Being a runnable, a retriever composes with ``|``,
    batches on the shared pool and shows up in traces with kind ``retriever``."""

    kind = "retriever"
    io_bound = True

    @abstractmethod
    def retrieve(self, query: str) -> list[Document]:
        """The documents relevant to ``query``, best first (``document.score`` set where known)."""

    def _invoke(self, input: str, config: RunConfig | None = None, **kwargs: Any) -> list[Document]:
        if isinstance(input, dict) and "query" in input:  # {"query": ...} from a chain
            input = input["query"]
        if not isinstance(input, str):
            raise TypeError(f"{self.name} takes a query string, got {type(input).__name__}")
        return self.retrieve(input)

    # LangChain's name for the same call.
    def get_relevant_documents(self, query: str) -> list[Document]:
        return self.retrieve(query)
