"""Shared pieces of the cache tests: requests and responses, a deterministic embedding, a fake clock,
and a real ``redis-server`` started for the session on a free loopback port."""

from __future__ import annotations

import hashlib
import math
import re

from maru.cache import CachedResponse, CacheRequest
from maru.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolCallChunk,
    Usage,
)
from maru.models import Embeddings


def request(question: str, *, system: str = "be brief", **params) -> CacheRequest:
    params.setdefault("model", "m-1")
    return CacheRequest(params["model"], [SystemMessage(system), HumanMessage(question)], params)


def response(text: str = "answer") -> CachedResponse:
    return CachedResponse(AIMessage(text, id="r1", usage=Usage(5, 2)))


def streamed_response() -> CachedResponse:
    """A stream of text and two tool calls in pieces, usage on the last chunk — the awkward case."""
    chunks = [
        AIMessageChunk("Let me ", id="run-1"),
        AIMessageChunk("check. ", id="run-1"),
        AIMessageChunk(
            "", id="run-1", tool_call_chunks=[ToolCallChunk(0, "call_a", "weather", '{"city": ')]
        ),
        AIMessageChunk("", id="run-1", tool_call_chunks=[ToolCallChunk(0, "", "", '"서울"}')]),
        AIMessageChunk(
            "", id="run-1", tool_call_chunks=[ToolCallChunk(1, "call_b", "time", '{"tz": "KST"}')]
        ),
        AIMessageChunk(
            "",
            id="run-1",
            usage=Usage(12, 30, 4),
            response_metadata={"finish_reason": "tool_calls"},
        ),
    ]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return CachedResponse(total.to_message(), chunks)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HashEmbeddings(Embeddings):
    """Bag of words hashed into 512 buckets, L2-normalised: deterministic, and close for texts that
    share most words ("capital of France" ~ "capital of Spain"), which is what the guard is for.
    Counts its calls."""

    dim = 512

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.extend(texts)
        return [self._vector(t) for t in texts]


# --------------------------------------------------------------------------- Redis
