"""What every backend must do alike: store and return responses (streamed ones with tool-call
chunks included), keep requests apart, clear — directly and through a whole chat-model call."""

import asyncio
from collections.abc import Iterator

import pytest

from maru.cache import (
    BaseCache,
    InMemoryCache,
    RedisCache,
    SemanticCache,
    SQLiteCache,
)
from maru.messages import AIMessage, ToolCall, Usage
from maru.models import ScriptedChatModel

from .conftest import HashEmbeddings, request, response, streamed_response

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
    "semantic",
]


@pytest.fixture(params=BACKENDS)
def cache(request: pytest.FixtureRequest, tmp_path) -> Iterator[BaseCache]:
    kind = request.param
    if kind == "memory":
        yield InMemoryCache()
    elif kind == "sqlite":
        with SQLiteCache(tmp_path / "cache.sqlite") as sqlite:
            yield sqlite
    elif kind == "redis":
        url = request.getfixturevalue("redis_db")
        redis_cache = RedisCache(url)
        yield redis_cache
        redis_cache.close()
    else:
        yield SemanticCache(HashEmbeddings())


def test_is_a_base_cache(cache):
    assert isinstance(cache, BaseCache)


def test_streamed_response_with_tool_call_chunks_round_trips(cache):
    stored = streamed_response()
    cache.update(request("weather?"), stored)
    hit = cache.lookup(request("weather?"))
    assert hit == stored
    assert [c.tool_call_chunks for c in hit.chunks] == [c.tool_call_chunks for c in stored.chunks]
    total = hit.chunks[0]
    for c in hit.chunks[1:]:
        total = total + c
    assert total.to_message() == hit.message
    assert hit.message.usage == Usage(12, 30, 4)


def test_requests_are_kept_apart_and_clear_empties(cache):
    cache.update(request("q", temperature=0), response("cold"))
    cache.update(request("q", temperature=1), response("warm"))
    assert cache.lookup(request("q", temperature=0)).message.content == "cold"
    assert cache.lookup(request("q", temperature=1)).message.content == "warm"
    assert cache.lookup(request("q", temperature=0, model="m-2")) is None
    cache.clear()
    assert cache.lookup(request("q", temperature=0)) is None


def test_async_round_trip(cache):
    async def main():
        await cache.aupdate(request("async q"), streamed_response())
        return await cache.alookup(request("async q"))

    assert asyncio.run(main()) == streamed_response()


def test_through_a_chat_model_stream_and_invoke(cache):
    reply = AIMessage(
        "Checking the weather.",
        tool_calls=[ToolCall("weather", {"city": "서울"}, "call_1")],
        usage=Usage(20, 8),
    )
    model = ScriptedChatModel(replies=[reply], cache=cache)
    question = [("system", "be brief"), ("human", "Weather in Seoul?")]
    first = list(model.stream(question))
    replay = list(model.stream(question))  # served from the cache: the script has no reply left
    assert len(model.calls) == 1
    assert [c.content for c in replay] == [c.content for c in first]
    assert [c.tool_call_chunks for c in replay] == [c.tool_call_chunks for c in first]
    whole = model.invoke(question)
    assert whole.tool_calls == reply.tool_calls and whole.content == reply.content
    assert whole.response_metadata.get("cached") is True
