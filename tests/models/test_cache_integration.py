"""Response caching through a whole chat-model call: invoke, stream, async, global and per model."""

import asyncio

import pytest

from maru.cache import BaseCache, set_cache
from maru.cache.memory import InMemoryCache
from maru.messages import AIMessage, ToolCall, Usage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate

QUESTION = [("system", "be brief"), ("human", "capital of Korea?")]


def model(cache, replies=("Seoul is the capital.",), **kw):
    return ScriptedChatModel(replies=list(replies), cycle=True, cache=cache, **kw)


@pytest.fixture(autouse=True)
def no_global_cache():
    set_cache(None)
    yield
    set_cache(None)


def test_second_identical_request_is_served_from_cache():
    m = model(InMemoryCache())
    first = m.invoke(QUESTION)
    second = m.invoke(QUESTION)
    assert len(m.calls) == 1  # the model was asked once
    assert second.content == first.content == "Seoul is the capital."
    assert not first.cached and second.cached
    assert second.usage == first.usage


def test_different_parameters_or_messages_miss():
    m = model(InMemoryCache())
    m.invoke(QUESTION)
    m.invoke(QUESTION, temperature=0.5)
    m.invoke([("system", "be brief"), ("human", "capital of Japan?")])
    m.invoke(QUESTION, timeout=3)  # timeouts do not change the answer: a hit
    assert len(m.calls) == 3


def test_stream_is_cached_and_replayed_as_a_stream():
    m = model(InMemoryCache(), replies=["one two three"])
    first = list(m.stream(QUESTION))
    replay = list(m.stream(QUESTION))
    assert len(m.calls) == 1
    assert [c.content for c in replay] == [c.content for c in first]
    assert len(replay) > 1 and all(c.cached for c in replay)
    whole = m.invoke(QUESTION)  # an invoke served from the stored stream gets its sum
    assert whole.cached and whole.content == "one two three" and len(m.calls) == 1


def test_invoke_then_stream_replays_the_message():
    m = model(InMemoryCache(), replies=["alpha beta"])
    m.invoke(QUESTION)
    chunks = list(m.stream(QUESTION))
    assert len(m.calls) == 1
    assert "".join(c.content for c in chunks) == "alpha beta" and chunks[0].cached


def test_tool_calls_survive_the_cache():
    reply = AIMessage("", tool_calls=[ToolCall("weather", {"city": "Seoul"}, "c1")], usage=Usage(5, 2))
    m = model(InMemoryCache(), replies=[reply])
    list(m.stream(QUESTION))
    again = m.invoke(QUESTION)
    assert again.tool_calls == [ToolCall("weather", {"city": "Seoul"}, "c1")]


def test_async_paths_share_the_cache():
    m = model(InMemoryCache(), replies=["async answer"])

    async def main():
        a = await m.ainvoke(QUESTION)
        b = await m.ainvoke(QUESTION)
        chunks = [c async for c in m.astream(QUESTION)]
        return a, b, chunks

    a, b, chunks = asyncio.run(main())
    assert len(m.calls) == 1
    assert b.cached and not a.cached and "".join(c.content for c in chunks) == "async answer"


def test_global_cache_and_per_model_opt_out():
    shared = InMemoryCache()
    set_cache(shared)
    m = model(None)
    m.invoke(QUESTION)
    m.invoke(QUESTION)
    assert len(m.calls) == 1
    opted_out = model(False)
    opted_out.invoke(QUESTION)
    opted_out.invoke(QUESTION)
    assert len(opted_out.calls) == 2


def test_cache_hit_inside_a_chain():
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "capital of {country}?")])
    m = model(InMemoryCache(), replies=["Seoul.", "Tokyo."])
    chain = prompt | m | StrOutputParser()
    assert chain.invoke({"country": "Korea"}) == "Seoul."
    assert chain.invoke({"country": "Japan"}) == "Tokyo."
    assert chain.invoke({"country": "Korea"}) == "Seoul."
    assert list(chain.stream({"country": "Korea"})) == ["Seoul."]
    assert len(m.calls) == 2


def test_a_failing_cache_never_loses_the_answer():
    class Broken(BaseCache):
        def lookup(self, request):
            raise OSError("disk gone")

        def update(self, request, response):
            raise OSError("disk gone")

        def clear(self):
            pass

    m = model(Broken())
    assert m.invoke(QUESTION).content == "Seoul is the capital."
    assert list(m.stream(QUESTION))


def test_an_abandoned_stream_is_not_cached():
    m = model(InMemoryCache(), replies=["a b c d"])
    stream = m.stream(QUESTION)
    next(stream)
    stream.close()
    assert list(m.stream(QUESTION))[0].cached is False
    assert len(m.calls) == 2


def test_errors_are_not_cached():
    m = model(InMemoryCache(), replies=[ConnectionError("down"), "recovered"])
    with pytest.raises(ConnectionError):
        m.invoke(QUESTION)
    assert m.invoke(QUESTION).content == "recovered"
