"""Retrieval-augmented generation: documents, loaders, splitters, embeddings, vector stores, typed
filters, indexing with a record manager, and retrievers.

Names are imported lazily (``from maru.rag import LocalEmbeddings`` loads sentence-transformers only
then), so ``import maru.rag`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from .. import _lazy
from .documents import Document, content_hash
from .filters import F, Filter

# name -> module (relative to maru.rag) that defines it. Subsystems add their public names here.
_LAZY: dict[str, str] = {
    # loaders and splitters
    **dict.fromkeys(
        ["CSVLoader", "DirectoryLoader", "HTMLLoader", "JSONLLoader", "Loader", "PDFLoader",
         "TextLoader", "WebLoader", "load"], ".loaders"),
    **dict.fromkeys(
        ["MarkdownHeaderSplitter", "RecursiveSplitter", "SentenceSplitter", "TextSplitter",
         "split_sentences"], ".splitters"),
    # embeddings
    **dict.fromkeys(["CachedEmbeddings", "LocalEmbeddings", "OpenAIEmbeddings"], ".embeddings"),
    # stores
    "VectorStore": ".stores.base",
    "InMemoryStore": ".stores.memory",
    "LocalStore": ".stores.local",
    "MilvusStore": ".stores.milvus",
    # indexing
    **dict.fromkeys(["IndexResult", "index", "aindex", "reconcile", "delete_sources"], ".indexing"),
    "RecordManager": ".records",
    **dict.fromkeys(["DocStore", "InMemoryDocStore", "SQLDocStore"], ".docstore"),
    "index_parent_child": ".parent_child",
    # retrievers
    "Retriever": ".retrievers.base",
    "VectorRetriever": ".retrievers.vector",
    **dict.fromkeys(["BM25Index", "BM25Retriever", "detect_language"], ".lexical"),
    "HybridRetriever": ".retrievers.hybrid",
    "ParentChildRetriever": ".retrievers.parent_child",
    "MultiQueryRetriever": ".retrievers.multi_query",
    **dict.fromkeys(
        ["ContextualCompressionRetriever", "CompressorPipeline", "EmbeddingsFilter", "LLMExtractor",
         "LLMFilter", "RedundancyFilter"], ".retrievers.compression"),
}

__all__ = ["Document", "F", "Filter", "content_hash", *_LAZY]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _LAZY, name)
