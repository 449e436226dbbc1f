"""Contextual compression: retrieve generously, then keep only what bears on the query.

``ContextualCompressionRetriever(base, compressor)`` runs a base retriever, then a compressor
(``compress(docs, query) -> docs``): an LLM that extracts the relevant sentences or says yes/no per
document, an embeddings similarity threshold, a near-duplicate filter, or a pipeline of those and
text splitters.

The LLM compressors put several numbered documents in one prompt (batches sized under a token
budget, run concurrently) instead of one call per document: a tenth of the calls for ten short
documents. Their replies are parsed leniently, and a document the reply says nothing parseable
about is kept (``on_parse_error="keep"``): a garbled answer costs precision, never recall.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ...core.config import RunConfig
from ...core.executor import run_bounded
from ...messages import HumanMessage, SystemMessage
from ...usage.tokens import count_tokens
from ..documents import Document
from .base import QueryRetriever, Retriever, fetch_documents, query_runnable, query_text

if TYPE_CHECKING:
    import numpy as np

    from ...models.base import ChatModel
    from ...models.embeddings import Embeddings

__all__ = [
    "Compressor",
    "CompressorPipeline",
    "ContextualCompressionRetriever",
    "EmbeddingsFilter",
    "LLMExtractor",
    "LLMFilter",
    "RedundancyFilter",
]

OnParseError = Literal["keep", "drop"]


@runtime_checkable
class Compressor(Protocol):
    """Shrinks or filters retrieved documents with the query in view."""

    def compress(self, docs: Sequence[Document], query: str) -> list[Document]: ...


# ============================================================================ LLM compressors

# A section header in the model's reply: "[3]", "[Document 3]", "Document 3:", "### 3", "<doc id=3>".
_HEADER = re.compile(
    r"^\s*(?:\*\*)?(?:"
    r"\[\s*(?:doc(?:ument)?\s*)?#?\s*(\d+)\s*\]"
    r"|<\s*doc(?:ument)?\s+id\s*=\s*[\"']?(\d+)[\"']?\s*>"
    r"|#{1,6}\s*(?:doc(?:ument)?\s*)?#?\s*(\d+)\b"
    r"|doc(?:ument)?\s*#?\s*(\d+)\s*[:.)-]"
    r")(?:\*\*)?[:.)-]?\s*",
    re.IGNORECASE | re.MULTILINE,
)
_CLOSING_TAG = re.compile(r"</\s*doc(?:ument)?\s*>", re.IGNORECASE)
_NO_OUTPUT = "NO_OUTPUT"


def _render_docs(docs: Sequence[Document], start: int = 1) -> str:
    return "\n\n".join(f'<doc id="{i}">\n{d.text}\n</doc>' for i, d in enumerate(docs, start))


def parse_sections(reply: str, n: int) -> dict[int, str]:
    """The reply split at document headers: number (1-based, at most ``n``) → the text under it.
    Numbers out of range and text before the first header are ignored; a repeated number keeps
    its first section."""
    out: dict[int, str] = {}
    matches = list(_HEADER.finditer(reply))
    for m, nxt in zip(matches, [*matches[1:], None], strict=False):
        number = int(next(g for g in m.groups() if g is not None))
        body = reply[m.end(): nxt.start() if nxt is not None else len(reply)]
        body = _CLOSING_TAG.sub("", body).strip()
        if 1 <= number <= n and number not in out:
            out[number] = body
    return out


_VERDICT = re.compile(
    r"(?:\[|doc(?:ument)?\s*#?\s*|^|\s)(\d+)\s*\]?\s*[:.)=\-–>]*\s*\**\s*"
    r"(yes|no|relevant|irrelevant|not relevant|true|false|y|n)\b",
    re.IGNORECASE | re.MULTILINE,
)
_POSITIVE = frozenset({"yes", "relevant", "true", "y"})


def parse_verdicts(reply: str, n: int) -> dict[int, bool]:
    """``n: yes/no`` lines (and looser spellings) → number → relevant. First verdict per number wins."""
    out: dict[int, bool] = {}
    for m in _VERDICT.finditer(reply):
        number = int(m.group(1))
        if 1 <= number <= n and number not in out:
            out[number] = m.group(2).lower() in _POSITIVE
    return out


class _BatchedLLMCompressor:
    """Shared batching: documents packed into prompts under ``max_tokens_per_batch`` (counted with
    :func:`~maru.usage.count_tokens` for the model) and at most ``max_docs_per_batch`` per prompt;
    the batches run concurrently on the shared pool."""

    system_prompt: str = ""

    def __init__(
        self,
        model: ChatModel,
        *,
        max_tokens_per_batch: int = 3000,
        max_docs_per_batch: int = 8,
        max_concurrency: int | None = 8,
        on_parse_error: OnParseError = "keep",
        system_prompt: str | None = None,
    ) -> None:
        if max_tokens_per_batch <= 0 or max_docs_per_batch <= 0:
            raise ValueError("max_tokens_per_batch and max_docs_per_batch must be positive")
        if on_parse_error not in ("keep", "drop"):
            raise ValueError(f"on_parse_error must be 'keep' or 'drop', got {on_parse_error!r}")
        self.model = model
        self.max_tokens_per_batch = max_tokens_per_batch
        self.max_docs_per_batch = max_docs_per_batch
        self.max_concurrency = max_concurrency
        self.on_parse_error = on_parse_error
        if system_prompt is not None:
            self.system_prompt = system_prompt

    def _tokens(self, text: str) -> int:
        return count_tokens(text, getattr(self.model, "model_name", None))

    def batches(self, docs: Sequence[Document], query: str) -> list[list[int]]:
        """Indices of ``docs`` grouped into prompts. A document larger than the budget on its own
        goes alone (the model may still accept it; cutting it would lose text silently)."""
        budget = self.max_tokens_per_batch - self._tokens(self.system_prompt) - self._tokens(query) - 20
        groups: list[list[int]] = []
        used = 0
        for i, doc in enumerate(docs):
            cost = self._tokens(doc.text) + 8  # the <doc id> framing
            if groups and len(groups[-1]) < self.max_docs_per_batch and used + cost <= budget:
                groups[-1].append(i)
                used += cost
            else:
                groups.append([i])
                used = cost
        return groups

    def _ask(self, docs: Sequence[Document], query: str) -> str:
        prompt = f"Question: {query}\n\n{_render_docs(docs)}"
        reply = self.model.invoke([SystemMessage(self.system_prompt), HumanMessage(prompt)])
        return reply.text

    def _decide(self, docs: Sequence[Document], reply: str) -> list[Document | None]:
        raise NotImplementedError

    def compress(self, docs: Sequence[Document], query: str) -> list[Document]:
        docs = list(docs)
        if not docs:
            return []
        groups = self.batches(docs, query)

        def run(g: int) -> list[Document | None]:
            batch = [docs[i] for i in groups[g]]
            return self._decide(batch, self._ask(batch, query))

        results = run_bounded(run, len(groups), self.max_concurrency)
        out: list[Document] = []
        for ok, value in results:
            if not ok:
                raise value
            out.extend(d for d in value if d is not None)
        return out


class LLMExtractor(_BatchedLLMCompressor):
    """Asks the model for the sentences of each document that help answer the query, verbatim;
    ``NO_OUTPUT`` drops the document. Several documents go in one prompt (see the class
    docstring of the module for batching and lenient parsing)."""

    system_prompt = (
        "You extract evidence. For each document below, copy verbatim the sentences that help answer "
        "the question; change nothing. Answer with one section per document, in order, each "
        "starting with its number in brackets on its own line, like:\n[1]\n<sentences>\n[2]\n"
        f"{_NO_OUTPUT}\nWrite {_NO_OUTPUT} for a document with nothing relevant."
    )

    def _decide(self, docs: Sequence[Document], reply: str) -> list[Document | None]:
        sections = parse_sections(reply, len(docs))
        out: list[Document | None] = []
        for i, doc in enumerate(docs, 1):
            body = sections.get(i)
            if body is None:
                out.append(doc if self.on_parse_error == "keep" else None)
            elif not body or body.strip(" .\"'`*").upper() == _NO_OUTPUT:
                out.append(None)
            else:
                out.append(Document(body, dict(doc.metadata), doc.id, doc.score))
        return out


class LLMFilter(_BatchedLLMCompressor):
    """Asks the model, per document, whether it is relevant to the query (yes/no); keeps the yeses
    unchanged."""

    system_prompt = (
        "You judge relevance. For each document below, say whether it helps answer the question. "
        "Answer one line per document, in order, exactly like:\n1: yes\n2: no"
    )

    def _decide(self, docs: Sequence[Document], reply: str) -> list[Document | None]:
        verdicts = parse_verdicts(reply, len(docs))
        return [
            doc if verdicts.get(i, self.on_parse_error == "keep") else None
            for i, doc in enumerate(docs, 1)
        ]


# ============================================================================ embedding compressors


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def embed_in_batches(embeddings: Embeddings, texts: Sequence[str], batch_size: int | None) -> np.ndarray:
    """``embed_array`` over ``texts`` in requests of at most ``batch_size`` (all at once if None)."""
    import numpy as np

    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if not batch_size or batch_size >= len(texts):
        return np.asarray(embeddings.embed_array(texts), dtype=np.float32)
    parts = [
        np.asarray(embeddings.embed_array(texts[i: i + batch_size]), dtype=np.float32)
        for i in range(0, len(texts), batch_size)
    ]
    return np.vstack(parts)


class EmbeddingsFilter:
    """Keeps documents whose cosine similarity to the query is at least ``similarity_threshold``
    and/or the ``k`` most similar. With ``k`` the result is sorted by similarity; with a threshold
    alone the input order is kept. ``score`` is set to the similarity."""

    def __init__(
        self,
        embeddings: Embeddings,
        similarity_threshold: float | None = None,
        k: int | None = None,
        *,
        batch_size: int | None = 64,
    ) -> None:
        if similarity_threshold is None and k is None:
            raise ValueError("EmbeddingsFilter needs similarity_threshold=..., k=..., or both")
        if k is not None and k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.embeddings = embeddings
        self.similarity_threshold, self.k, self.batch_size = similarity_threshold, k, batch_size

    def similarities(self, docs: Sequence[Document], query: str) -> np.ndarray:
        import numpy as np

        doc_vecs = _unit_rows(embed_in_batches(self.embeddings, [d.text for d in docs], self.batch_size))
        q = _unit_rows(np.asarray(self.embeddings.embed_query(query), dtype=np.float32))
        return np.asarray(doc_vecs @ q, dtype=np.float64)

    def compress(self, docs: Sequence[Document], query: str) -> list[Document]:
        docs = list(docs)
        if not docs:
            return []
        sims = self.similarities(docs, query)
        idx = list(range(len(docs)))
        if self.similarity_threshold is not None:
            idx = [i for i in idx if sims[i] >= self.similarity_threshold]
        if self.k is not None:
            idx = sorted(idx, key=lambda i: -sims[i])[: self.k]
        return [Document(docs[i].text, dict(docs[i].metadata), docs[i].id, float(sims[i])) for i in idx]


class RedundancyFilter:
    """Drops documents nearly identical to an earlier one (cosine similarity at or above
    ``similarity_threshold``); the first of each group, in input order, stays."""

    def __init__(self, embeddings: Embeddings, similarity_threshold: float = 0.95, *,
                 batch_size: int | None = 64) -> None:
        self.embeddings, self.similarity_threshold, self.batch_size = (
            embeddings, similarity_threshold, batch_size,
        )

    def compress(self, docs: Sequence[Document], query: str = "") -> list[Document]:
        docs = list(docs)
        if len(docs) < 2:
            return docs
        vecs = _unit_rows(embed_in_batches(self.embeddings, [d.text for d in docs], self.batch_size))
        kept: list[int] = []
        for i in range(len(docs)):
            if not kept or float((vecs[kept] @ vecs[i]).max()) < self.similarity_threshold:
                kept.append(i)
        return [docs[i] for i in kept]


# ============================================================================ composition


class CompressorPipeline:
    """Steps applied in order: compressors (``compress(docs, query)``) and document transformers
    such as text splitters (``split_documents(docs)``)."""

    def __init__(self, steps: Sequence[Any]) -> None:
        for step in steps:
            if not (callable(getattr(step, "compress", None))
                    or callable(getattr(step, "split_documents", None))):
                raise TypeError(
                    f"pipeline step {type(step).__name__} has neither compress(docs, query) nor "
                    "split_documents(docs)"
                )
        self.steps = list(steps)

    def compress(self, docs: Sequence[Document], query: str) -> list[Document]:
        out = list(docs)
        for step in self.steps:
            if not out:
                break
            if callable(getattr(step, "compress", None)):
                out = list(step.compress(out, query))
            else:
                out = list(step.split_documents(out))
        return out


class ContextualCompressionRetriever(Retriever):
    """``base`` retrieves; ``compressor`` (or a list of steps, run as a :class:`CompressorPipeline`)
    keeps and trims what is relevant to the query. ``base`` is any runnable (or function) that maps
    the query to documents; it gets the input as given (a ``HistoryAwareRetriever`` sees the history)."""

    def __init__(self, base: QueryRetriever | Any, compressor: Compressor | Sequence[Any]) -> None:
        if isinstance(compressor, Sequence) and not isinstance(compressor, str):
            compressor = CompressorPipeline(compressor)
        if not callable(getattr(compressor, "compress", None)):
            raise TypeError(
                f"compressor must have compress(docs, query), got {type(compressor).__name__}"
            )
        self.base = query_runnable(base, "base")
        self.compressor: Compressor = compressor  # type: ignore[assignment]

    def retrieve(self, query: str) -> list[Document]:
        return self._retrieve(query, None)

    def _retrieve(self, input: Any, config: RunConfig | None) -> list[Document]:
        query = query_text(input, self.name)
        docs = fetch_documents(self.base, input, config)
        return self.compressor.compress(docs, query) if docs else []
