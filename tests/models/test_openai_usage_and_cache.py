"""OpenAIChat over a real socket with usage tracking, budgets and caching switched on: streamed
calls are counted exactly (from the provider's final usage chunk) and a cached stream replays
without touching the server."""

from __future__ import annotations

import asyncio

import pytest

from maru.cache.memory import InMemoryCache
from maru.messages import Usage
from maru.models import OpenAIChat
from maru.usage import Budget, BudgetExceeded, register_price, track

from .conftest import API_KEY, FakeChatServer, Reply

MODEL = "priced-fake-model"


@pytest.fixture(autouse=True)
def price():
    register_price(MODEL, input=2.0, output=8.0, cached_input=0.5)


def make(server: FakeChatServer, **kwargs) -> OpenAIChat:
    return OpenAIChat(MODEL, base_url=server.base_url, api_key=API_KEY, max_retries=0, **kwargs)


def test_streamed_calls_are_counted_exactly(server: FakeChatServer) -> None:
    server.script(Reply("streamed answer here", usage=(120, 30, 100)), Reply("whole", usage=(50, 5, 0)))
    model = make(server)
    with track() as t:
        chunks = list(model.stream("q"))
        model.invoke("q2")
    assert len(chunks) > 2
    assert t.requests == 2
    assert t.total == Usage(170, 35, 100)
    # 100 cached input tokens at 0.5, 20 + 50 fresh input at 2.0, 35 output at 8.0 (per million)
    assert t.total_cost == pytest.approx((100 * 0.5 + 70 * 2.0 + 35 * 8.0) / 1e6)


def test_async_stream_counted_exactly(server: FakeChatServer) -> None:
    server.script(Reply("async streamed", usage=(40, 12, 0)))
    model = make(server)

    async def main():
        with track() as t:
            async for _ in model.astream("q"):
                pass
        return t

    assert asyncio.run(main()).total == Usage(40, 12, 0)


def test_cached_stream_replays_without_a_request(server: FakeChatServer) -> None:
    server.script(Reply("cache me please", usage=(10, 4, 0)))
    model = make(server, cache=InMemoryCache())
    with track() as t:
        first = [c.content for c in model.stream("same question")]
        second = [c.content for c in model.stream("same question")]
    assert second == first
    assert len(server.requests) == 1
    assert t.requests == 1 and t.cache_hits == 1
    assert t.total == Usage(10, 4, 0)


def test_budget_stops_requests_before_they_reach_the_server(server: FakeChatServer) -> None:
    server.script(Reply("one", usage=(10, 10, 0)))
    model = make(server, max_tokens=50)
    with Budget(max_requests=1):
        model.invoke("first")
        with pytest.raises(BudgetExceeded):
            model.invoke("second")
    assert len(server.requests) == 1
