"""Usage tracking and budgets through whole chat-model calls: nested chains, parallel branches,
batches, async and streams."""

import asyncio
import threading

import pytest

from maru import parallel, runnable
from maru.cache import set_cache
from maru.cache.memory import InMemoryCache
from maru.messages import AIMessage, Usage
from maru.models import ChatModel, ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.usage import Budget, BudgetExceeded, register_price, track

QUESTION = [("human", "hello there")]


@pytest.fixture(autouse=True)
def priced_model():
    register_price("priced-model", input=1.0, output=2.0, cached_input=0.5)  # USD per 1M tokens
    set_cache(None)
    yield
    set_cache(None)


DEFAULT_USAGE = Usage(100, 50)


def scripted(usage=DEFAULT_USAGE, *, io_bound=False, cache=False, reply="fine"):
    return ScriptedChatModel(
        replies=[AIMessage(reply, usage=usage)], cycle=True, model="priced-model", io_bound=io_bound, cache=cache
    )


def test_track_counts_every_call_in_nested_chains_parallel_and_batch():
    m = scripted()
    inner = m | StrOutputParser()
    chain = parallel(a=inner, b=runnable(lambda x: x) | inner)
    with track() as t:
        chain.invoke(QUESTION)
        inner.batch([QUESTION] * 3)
    assert t.requests == 5
    assert t.total == Usage(500, 250)
    assert t.total_cost == pytest.approx(5 * (100 * 1.0 + 50 * 2.0) / 1e6)
    assert t.by_model()["priced-model"].requests == 5


def test_track_counts_threads_async_and_streams_exactly():
    m = scripted(io_bound=True)
    with track() as t:
        parallel(a=m, b=m, c=m).invoke(QUESTION)  # io-bound: three pool threads
        m.batch([QUESTION] * 4, max_concurrency=2)
        list(m.stream(QUESTION))

        async def go():
            await m.ainvoke(QUESTION)
            async for _ in m.astream(QUESTION):
                pass
            await m.abatch([QUESTION] * 2)

        asyncio.run(go())
    assert t.requests == 3 + 4 + 1 + 1 + 1 + 2
    assert t.total == Usage(100 * 12, 50 * 12)


def test_nested_track_blocks_both_record():
    m = scripted()
    with track() as outer:
        m.invoke(QUESTION)
        with track() as inner:
            m.invoke(QUESTION)
    assert outer.requests == 2 and inner.requests == 1


def test_nothing_is_counted_outside_track():
    m = scripted()
    m.invoke(QUESTION)
    with track() as t:
        pass
    assert t.requests == 0


def test_cache_hits_are_free_in_the_tracker():
    m = scripted(cache=InMemoryCache())
    with track() as t:
        m.invoke(QUESTION)
        m.invoke(QUESTION)
        list(m.stream(QUESTION))
    assert t.cache_hits == 2
    assert t.total_cost == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)


def test_a_call_without_reported_usage_is_counted_by_the_tokenizer():
    class NoUsage(ChatModel):
        def _generate(self, messages, params):
            return AIMessage("one two three four")

    with track() as t:
        NoUsage(model="priced-model").invoke(QUESTION)
    assert t.requests == 1
    assert t.total.input_tokens > 0 and t.total.output_tokens > 0


def test_budget_refuses_before_the_request():
    m = scripted()
    with Budget(max_requests=2) as budget:
        m.invoke(QUESTION)
        m.invoke(QUESTION)
        with pytest.raises(BudgetExceeded) as info:
            m.invoke(QUESTION)
    assert len(m.calls) == 2  # the third request never reached the model
    assert "request" in str(info.value)
    assert budget.requests == 2


def test_budget_reserves_the_output_cap_and_reconciles():
    m = scripted(usage=Usage(10, 5))
    with Budget(max_tokens=1000) as budget:
        with pytest.raises(BudgetExceeded):
            m.invoke(QUESTION, max_tokens=5000)  # cannot fit its own output cap
        m.invoke(QUESTION, max_tokens=100)
    assert budget.spent_tokens == 15  # reconciled to the real usage, reservation released


def test_budget_holds_under_parallel_calls():
    from maru.messages import to_messages
    from maru.usage import count_message_tokens

    per_call = count_message_tokens(to_messages(QUESTION), "priced-model") + 10
    m = scripted(usage=Usage(per_call - 10, 10), io_bound=True)  # spends exactly what it reserves
    budget = Budget(max_tokens=5 * per_call, default_output_reserve=10)
    barrier = threading.Barrier(12)
    results = []

    def call(_):
        barrier.wait()  # all twelve ask at the same moment
        try:
            m.invoke(QUESTION)
            results.append("ok")
        except BudgetExceeded:
            results.append("refused")

    with budget:
        runnable(call, io_bound=True).batch(list(range(12)), max_concurrency=12)
    assert results.count("ok") == 5 == len(m.calls)
    assert results.count("refused") == 7
    assert budget.spent_tokens == 5 * per_call


def test_failed_request_releases_its_reservation():
    m = ScriptedChatModel(replies=[ConnectionError("down"), AIMessage("ok", usage=Usage(5, 5))], model="priced-model")
    with Budget(max_tokens=2000) as budget:
        with pytest.raises(ConnectionError):
            m.invoke(QUESTION)
        m.invoke(QUESTION)
    assert budget.spent_tokens == 10
