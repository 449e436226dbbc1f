"""The cache interface every backend implements, and the value it stores.

A chat model with a cache looks the request up before calling the provider. A hit is returned (or,
for a stream, replayed chunk by chunk) with ``response_metadata["cached"] = True`` and costs nothing
in usage tracking and budgets. Streams are stored as their chunks so a cached stream replays as a
stream; an invoke served from a stored stream gets the chunks' sum.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.executor import run_in_thread
from ..messages import AIMessage, AIMessageChunk, BaseMessage, message_from_dict
from .key import cache_key, context_key, prompt_text


@dataclass(slots=True)
class CacheRequest:
    """One model request as caches see it. ``key`` identifies it exactly; ``context_key`` and
    ``prompt_text`` serve semantic caches (same context, similar last question)."""

    model: str
    messages: Sequence[BaseMessage]
    params: dict[str, Any]
    key: str = ""
    _context_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = cache_key(self.params, self.messages)

    @property
    def context_key(self) -> str:
        if self._context_key is None:
            self._context_key = context_key(self.params, self.messages)
        return self._context_key

    @property
    def prompt_text(self) -> str:
        return prompt_text(self.messages)


@dataclass(slots=True)
class CachedResponse:
    """What a cache stores for one request: the whole message, and the chunks when it was streamed."""

    message: AIMessage
    chunks: list[AIMessageChunk] | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"message": self.message.to_dict()}
        if self.chunks is not None:
            data["chunks"] = [_chunk_to_dict(c) for c in self.chunks]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CachedResponse:
        data = json.loads(text)
        message = message_from_dict(data["message"])
        assert isinstance(message, AIMessage)
        chunks = data.get("chunks")
        return cls(message, None if chunks is None else [_chunk_from_dict(c) for c in chunks])


def _chunk_to_dict(chunk: AIMessageChunk) -> dict[str, Any]:
    data = chunk.to_dict()
    if chunk.tool_call_chunks:
        data["tool_call_chunks"] = [
            {"index": c.index, "id": c.id, "name": c.name, "args": c.args} for c in chunk.tool_call_chunks
        ]
    return data


def _chunk_from_dict(data: dict[str, Any]) -> AIMessageChunk:
    from ..messages import ToolCallChunk, Usage

    message = message_from_dict(data)
    assert isinstance(message, AIMessage)
    usage = data.get("usage")
    return AIMessageChunk(
        content=message.content,
        name=message.name,
        id=message.id,
        metadata=message.metadata,
        tool_calls=message.tool_calls,
        usage=Usage(**usage) if usage else None,
        response_metadata=message.response_metadata,
        tool_call_chunks=[ToolCallChunk(**c) for c in data.get("tool_call_chunks", ())],
    )


class BaseCache(ABC):
    """A response cache. Backends implement ``lookup`` / ``update`` / ``clear``; the async twins
    run them on the shared executor unless a backend has native async I/O."""

    @abstractmethod
    def lookup(self, request: CacheRequest) -> CachedResponse | None: ...

    @abstractmethod
    def update(self, request: CacheRequest, response: CachedResponse) -> None: ...

    @abstractmethod
    def clear(self) -> None: ...

    async def alookup(self, request: CacheRequest) -> CachedResponse | None:
        return await run_in_thread(self.lookup, request)

    async def aupdate(self, request: CacheRequest, response: CachedResponse) -> None:
        await run_in_thread(self.update, request, response)


_global_cache: BaseCache | None = None


def set_cache(cache: BaseCache | None) -> None:
    """Use ``cache`` for every chat model that was not given one of its own (``None`` turns the
    global cache off)."""
    global _global_cache
    _global_cache = cache


def get_cache() -> BaseCache | None:
    return _global_cache
