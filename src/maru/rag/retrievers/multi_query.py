"""``MultiQueryRetriever``: a model rewrites the query several ways; every version is retrieved and
the rankings are fused, so a document phrased unlike the user's words still surfaces."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...core.config import RunConfig
from ...core.executor import run_bounded
from ...messages import HumanMessage
from ..documents import Document
from .base import QueryRetriever, Retriever, fetch_documents, query_runnable, query_text
from .hybrid import reciprocal_rank_fusion

if TYPE_CHECKING:
    from ...models.base import ChatModel

__all__ = ["MultiQueryRetriever", "parse_queries"]

DEFAULT_PROMPT = (
    "Write {n} different versions of the search query below, to find relevant documents in a "
    "search engine. Vary the wording and the angle; keep the meaning. Write one query per line, "
    "nothing else.\n\nQuery: {query}"
)

# "1.", "2)", "(3)", "-", "*", "•", "Q1:", "Query 2:", "Version 3 -" at the start of a line
_MARKER = re.compile(
    r"^\s*(?:[-*•·]+\s*|\(?\d+[.):]\s*|(?:q|query|question|version|rewrite)\s*\d*\s*[:.)\-]\s*)+",
    re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’«»"


def parse_queries(reply: str, n: int | None = None) -> list[str]:
    """The queries in a model reply: one per line, numbering, bullets, quotes and markdown emphasis
    stripped, blank lines and preambles ("Here are three versions:") dropped, duplicates removed."""
    out: list[str] = []
    seen: set[str] = set()
    for line in reply.splitlines():
        text = _MARKER.sub("", line).strip().strip("*_").strip().strip(_QUOTES).strip()
        if not text or text.endswith(":"):
            continue
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
    return out[:n] if n is not None else out


class MultiQueryRetriever(Retriever):
    """``model`` writes ``n`` rewrites of the query; ``base`` (any runnable or function from a query
    to documents) retrieves for each (and for the query itself when ``include_original``) concurrently; the rankings are fused by reciprocal rank
    fusion (``rrf_k``) and deduplicated by id, or by text for documents without one. ``k`` caps the
    result (default: every distinct document). A reply with no usable line falls back to the
    original query."""

    def __init__(
        self,
        base: QueryRetriever | Any,
        model: ChatModel,
        n: int = 3,
        include_original: bool = True,
        *,
        k: int | None = None,
        rrf_k: int = 60,
        prompt: str = DEFAULT_PROMPT,
        max_concurrency: int | None = None,
    ) -> None:
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        if "{query}" not in prompt:
            raise ValueError("the prompt must contain {query} (and may contain {n})")
        self.base = query_runnable(base, "base")
        self.model, self.n, self.include_original = model, n, include_original
        self.k, self.rrf_k, self.prompt, self.max_concurrency = k, rrf_k, prompt, max_concurrency

    def generate_queries(self, query: str, config: RunConfig | None = None) -> list[str]:
        """The rewrites the model proposes (at most ``n``)."""
        text = self.prompt.replace("{n}", str(self.n)).replace("{query}", query)
        reply = self.model.invoke([HumanMessage(text)], config)
        return parse_queries(reply.text, self.n)

    def queries_for(self, query: str, config: RunConfig | None = None) -> list[str]:
        rewrites = self.generate_queries(query, config)
        queries = ([query] if self.include_original or not rewrites else []) + rewrites
        return list(dict.fromkeys(queries))

    def retrieve(self, query: str) -> list[Document]:
        return self._retrieve(query, None)

    def _retrieve(self, input: Any, config: RunConfig | None) -> list[Document]:
        queries = self.queries_for(query_text(input, self.name), config)
        base = self.base
        results = run_bounded(
            lambda i: fetch_documents(base, queries[i], config), len(queries), self.max_concurrency
        )
        rankings = []
        for ok, value in results:
            if not ok:
                raise value
            rankings.append(value)
        return reciprocal_rank_fusion(rankings, rrf_k=self.rrf_k, k=self.k)
