"""Caching, budgets and usage tracking around every chat-model request.

``ChatModel``'s four choke points call into here only when something is switched on (a cache, or a
``track()`` / ``Budget`` block); otherwise they call the provider directly and a request costs one
ContextVar read and one attribute check more. For one request:

1. **Cache lookup.** A hit returns the stored answer — a stored stream replays chunk by chunk — marked
   ``response_metadata["cached"] = True``; trackers count it as a hit that cost nothing, budgets are
   not charged.
2. **Budget reservation**, before the provider is called: the input tokens are counted and the
   request's output cap (``max_tokens``, else the budget's default reserve) is reserved on every
   active budget. Concurrent requests reserve under a lock, so together they cannot overshoot.
3. **The request.** On failure the reservations are released.
4. **Settlement.** The usage the provider reported (or, when it reported none, a count of the input
   and output text) replaces the reservation, is priced, and is recorded by every active tracker.
   A stream that stops early — closed by its consumer, cancelled, or failing after its first chunk —
   is settled on what it produced (the provider billed it); one that fails before any chunk is
   released.
5. **Cache update** with the message (and the chunks, for a stream).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..cache.base import CachedResponse, CacheRequest
from ..messages import AIMessage, AIMessageChunk, BaseMessage, Usage
from .chunks import gather_message, message_to_chunk

if TYPE_CHECKING:
    from ..cache.base import BaseCache
    from ..usage.scope import UsageScope

log = logging.getLogger("maru.models")


class Provider(Protocol):
    """What accounting calls on a chat model: its name, whether it is local (priced at 0 when no
    price is known) and the four provider hooks. A protocol, not ``ChatModel``: the model calls
    into this module, so this module never imports it back."""

    @property
    def model_name(self) -> str: ...

    @property
    def local(self) -> bool: ...

    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage: ...

    async def _agenerate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage: ...

    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]: ...

    def _astream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]: ...


class _Request:
    """The bookkeeping of one accounted request."""

    __slots__ = (
        "cache", "cache_request", "local", "messages", "model", "params", "reservations", "scope",
    )

    def __init__(
        self,
        model_name: str,
        messages: Sequence[BaseMessage],
        params: dict[str, Any],
        cache: BaseCache | None,
        scope: UsageScope | None,
        local: bool = False,
    ) -> None:
        self.model = model_name
        self.local = local
        self.messages = messages
        self.params = params
        self.cache = cache
        self.scope = scope
        self.cache_request = CacheRequest(model_name, messages, params) if cache is not None else None
        self.reservations: list[tuple[Any, Any]] = []

    # ------------------------------------------------------------------ cache
    def served_from_cache(self, hit: CachedResponse | None) -> bool:
        if hit is None:
            return False
        self.record(hit.message.usage or Usage(), cached=True, streamed=hit.chunks is not None)
        return True

    def store(self, response: CachedResponse) -> None:
        assert self.cache is not None and self.cache_request is not None
        try:
            self.cache.update(self.cache_request, response)
        except Exception as exc:  # a failing cache must not lose an answer already paid for
            log.warning("cache %r could not store a response: %s", self.cache, exc)

    async def astore(self, response: CachedResponse) -> None:
        assert self.cache is not None and self.cache_request is not None
        try:
            await self.cache.aupdate(self.cache_request, response)
        except Exception as exc:
            log.warning("cache %r could not store a response: %s", self.cache, exc)

    # ------------------------------------------------------------------ budgets
    def reserve(self) -> None:
        """Reserve this request on every active budget, or raise ``BudgetExceeded`` before it runs."""
        if self.scope is None or not self.scope.budgets:
            return
        from ..usage.tokens import count_message_tokens

        input_tokens = count_message_tokens(self.messages, self.model, tools=self.params.get("tools"))
        output_cap = self.params.get("max_tokens") or self.params.get("max_completion_tokens")
        try:
            for budget in self.scope.budgets:
                reservation = budget.reserve(self.model, input_tokens, output_cap, local=self.local)
                self.reservations.append((budget, reservation))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for budget, reservation in self.reservations:
            budget.release(reservation)
        self.reservations = []

    def end_early(self, chunks: list[AIMessageChunk]) -> None:
        """A stream stopped before its end — closed by its consumer, cancelled, or failed: settled
        on the chunks the provider sent (it billed them), released when it sent none."""
        if chunks:
            self.settle(gather_message(chunks), streamed=True)
        else:
            self.release()

    # ------------------------------------------------------------------ settlement
    def settle(self, message: AIMessage, *, streamed: bool) -> None:
        if self.scope is None:
            return
        usage = message.usage if message.usage is not None else self.estimate(message)
        self.record(usage, cached=False, streamed=streamed)

    def estimate(self, message: AIMessage) -> Usage:
        from ..usage.tokens import count_message_tokens, count_tokens

        return Usage(count_message_tokens(self.messages, self.model), count_tokens(message.text, self.model))

    def record(self, usage: Usage, *, cached: bool, streamed: bool) -> None:
        if self.scope is None:
            return
        from ..usage.prices import cost_for

        cost = 0.0 if cached else cost_for(self.model, usage, local=self.local)
        for budget, reservation in self.reservations:
            budget.commit(reservation, usage, cost)
        self.reservations = []
        for tracker in self.scope.trackers:
            tracker.record(
                self.model, usage, cost=cost, cached=cached, streamed=streamed, local=self.local
            )


def _open(
    model: Provider,
    messages: Sequence[BaseMessage],
    params: dict[str, Any],
    cache: BaseCache | None,
    scope: UsageScope | None,
) -> _Request:
    name = str(params.get("model") or model.model_name)
    return _Request(name, messages, params, cache, scope, model.local)


def _mark_cached(message: AIMessage) -> Any:
    """A copy marked as served from cache; the stored object is never mutated.
    (Built directly: ``dataclasses.replace`` costs several times more on this hot path.)"""
    metadata = {**message.response_metadata, "cached": True}
    if isinstance(message, AIMessageChunk):
        return AIMessageChunk(
            message.content, message.name, message.id, message.metadata, list(message.tool_calls),
            message.usage, metadata, list(message.tool_call_chunks),
        )
    return AIMessage(
        message.content, message.name, message.id, message.metadata, list(message.tool_calls),
        message.usage, metadata,
    )


def _lookup(request: _Request) -> CachedResponse | None:
    if request.cache is None:
        return None
    assert request.cache_request is not None
    try:
        return request.cache.lookup(request.cache_request)
    except Exception as exc:
        from ..errors import CacheError

        if isinstance(exc, CacheError):
            raise
        log.warning("cache %r lookup failed, calling the model: %s", request.cache, exc)
        return None


async def _alookup(request: _Request) -> CachedResponse | None:
    if request.cache is None:
        return None
    assert request.cache_request is not None
    try:
        return await request.cache.alookup(request.cache_request)
    except Exception as exc:
        from ..errors import CacheError

        if isinstance(exc, CacheError):
            raise
        log.warning("cache %r lookup failed, calling the model: %s", request.cache, exc)
        return None


def _replay(hit: CachedResponse) -> Iterator[AIMessageChunk]:
    if hit.chunks is None:
        yield _mark_cached(message_to_chunk(hit.message))
        return
    for chunk in hit.chunks:
        yield _mark_cached(chunk)


# --------------------------------------------------------------------------- the four entry points
def call(
    model: Provider,
    messages: list[BaseMessage],
    params: dict[str, Any],
    cache: BaseCache | None,
    scope: UsageScope | None,
) -> AIMessage:
    request = _open(model, messages, params, cache, scope)
    hit = _lookup(request)
    if request.served_from_cache(hit):
        assert hit is not None
        return _mark_cached(hit.message if hit.chunks is None else gather_message(hit.chunks))
    request.reserve()
    try:
        message = model._generate(messages, params)
    except BaseException:
        request.release()
        raise
    request.settle(message, streamed=False)
    if request.cache is not None:
        request.store(CachedResponse(message))
    return message


async def acall(
    model: Provider,
    messages: list[BaseMessage],
    params: dict[str, Any],
    cache: BaseCache | None,
    scope: UsageScope | None,
) -> AIMessage:
    request = _open(model, messages, params, cache, scope)
    hit = await _alookup(request)
    if request.served_from_cache(hit):
        assert hit is not None
        return _mark_cached(hit.message if hit.chunks is None else gather_message(hit.chunks))
    request.reserve()
    try:
        message = await model._agenerate(messages, params)
    except BaseException:
        request.release()
        raise
    request.settle(message, streamed=False)
    if request.cache is not None:
        await request.astore(CachedResponse(message))
    return message


def call_stream(
    model: Provider,
    messages: list[BaseMessage],
    params: dict[str, Any],
    cache: BaseCache | None,
    scope: UsageScope | None,
) -> Iterator[AIMessageChunk]:
    request = _open(model, messages, params, cache, scope)
    hit = _lookup(request)
    if request.served_from_cache(hit):
        assert hit is not None
        yield from _replay(hit)
        return
    request.reserve()
    chunks: list[AIMessageChunk] = []
    complete = False
    try:
        for chunk in model._stream_chunks(messages, params):
            chunks.append(chunk)
            yield chunk
        complete = True
    except BaseException:  # closed, cancelled or failed mid-stream
        request.end_early(chunks)
        raise
    message = gather_message(chunks)
    request.settle(message, streamed=True)
    if complete and request.cache is not None:
        request.store(CachedResponse(message, chunks))


async def acall_stream(
    model: Provider,
    messages: list[BaseMessage],
    params: dict[str, Any],
    cache: BaseCache | None,
    scope: UsageScope | None,
) -> AsyncIterator[AIMessageChunk]:
    request = _open(model, messages, params, cache, scope)
    hit = await _alookup(request)
    if request.served_from_cache(hit):
        assert hit is not None
        for chunk in _replay(hit):
            yield chunk
        return
    request.reserve()
    chunks: list[AIMessageChunk] = []
    try:
        async for chunk in model._astream_chunks(messages, params):
            chunks.append(chunk)
            yield chunk
    except BaseException:
        request.end_early(chunks)
        raise
    message = gather_message(chunks)
    request.settle(message, streamed=True)
    if request.cache is not None:
        await request.astore(CachedResponse(message, chunks))
