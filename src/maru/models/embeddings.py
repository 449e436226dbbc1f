"""``Embeddings``: text in, vectors out — the interface retrievers, semantic caches and filters use.

Providers (local sentence-transformers, OpenAI) implement ``embed_documents``; ``embed_query`` is
separate because many models embed a query differently from a passage (an instruction prefix).
The async twins run the sync methods on the shared executor unless a provider has native async.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ..core.executor import run_in_thread

__all__ = ["Embeddings"]


class Embeddings(ABC):
    """Turns texts into fixed-length float vectors.

    ``languages`` says which text the model can read, as :func:`maru.rag.lexical.detect_language`
    names it (``"en"`` for Latin-script text, ``"ko"``, ``"ja"``, ``"zh"``, ``"other"``); ``None``
    (the default) claims nothing. A hybrid retriever gives no vote to a model's ranking for a query
    it cannot read: an English-only model's similarities for Korean text are noise."""

    languages: frozenset[str] | None = None
    similarity_floor: float = 0.0
    """The cosine similarity that unrelated texts still get from this model. Models trained with a
    low contrastive temperature (E5: 0.01) put everything near 0.7, so how far a top hit stands out
    is measured from here, not from zero."""

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """The vectors of ``texts`` as one float32 array (n × dim): what vector stores ingest.
        Providers that compute arrays natively override this to skip the list round trip."""
        import numpy as np

        return np.asarray(self.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query. Default: embedded like a document."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await run_in_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await run_in_thread(self.embed_query, text)
