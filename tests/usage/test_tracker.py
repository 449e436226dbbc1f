"""UsageTracker and track(): tallies, thread safety, every call path, nesting, JSON, the table."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from rich.console import Console

from maru import parallel, runnable
from maru.core.executor import submit
from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.usage import ModelUsage, UsageTracker, cost_of, current_scope, track

REPLY_USAGE = Usage(100, 20, 40)  # 100 input tokens (40 from the provider's prompt cache), 20 output


def model(name: str = "gpt-4o-mini", *, io_bound: bool = True) -> ScriptedChatModel:
    reply = AIMessage("fine, thanks", usage=REPLY_USAGE)
    return ScriptedChatModel([reply], cycle=True, model=name, io_bound=io_bound)


ONE_CALL_COST = cost_of("gpt-4o-mini", REPLY_USAGE)


# ----------------------------------------------------------------------------- tallies
def test_record_requests_cache_hits_and_unknown_cost() -> None:
    t = UsageTracker("unit")
    t.record("gpt-4o", Usage(1000, 100, 200), cost=0.5)
    t.record("gpt-4o", Usage(1000, 100), cost=0.25, streamed=True)
    t.record("gpt-4o", Usage(1000, 100), cost=0.0, cached=True)
    t.record("local", Usage(10, 1), cost=None)
    assert t.requests == 3 and t.cache_hits == 1 and t.calls == 4
    assert t.total == Usage(2010, 201, 200)  # the cache hit's tokens are not billed
    assert t.total_cost == pytest.approx(0.75)
    assert t.unknown_cost_calls == 1 and not t.cost_known
    assert t.saved == Usage(1000, 100)
    assert t.saved_cost == pytest.approx(cost_of("gpt-4o", Usage(1000, 100)))
    gpt = t.by_model()["gpt-4o"]
    assert (gpt.requests, gpt.cache_hits, gpt.streamed, gpt.cached_tokens) == (2, 1, 1, 200)
    gpt.requests = 99  # a copy: the tracker is not affected
    assert t.by_model()["gpt-4o"].requests == 2
    assert "3 requests, 1 cache hits" in repr(t)


def test_record_is_thread_safe() -> None:
    t = UsageTracker()
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(1000):
            t.record(f"m{i % 4}", Usage(3, 2, 1), cost=0.001)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.requests == 16_000
    assert t.total == Usage(48_000, 32_000, 16_000)
    assert t.total_cost == pytest.approx(16.0)
    assert {m: u.requests for m, u in t.by_model().items()} == {f"m{i}": 4000 for i in range(4)}


# ----------------------------------------------------------------------------- every call path
def test_track_counts_every_call_path() -> None:
    m = model()
    chain = runnable(lambda x: x) | m
    with track() as t:
        m.invoke("hi")  # 1
        chain.invoke("hi")  # 2: nested in a chain
        m.batch(["a", "b", "c"])  # 5: batch on the shared pool
        parallel(left=m, right=chain).invoke("q")  # 7: parallel branches
        assert "".join(c.text for c in m.stream("s")) == "fine, thanks"  # 8: a stream
        submit(m.invoke, "pool").result()  # 9: a pool thread (context copied)

        async def async_paths() -> None:
            await m.ainvoke("a")  # 10
            await m.abatch(["x", "y"])  # 12
            await asyncio.gather(*(m.ainvoke(str(i)) for i in range(3)))  # 15: tasks
            async for _ in m.astream("s"):  # 16: async stream
                pass

        asyncio.run(async_paths())
    assert t.requests == 16
    assert t.by_model()["gpt-4o-mini"].streamed == 2
    assert t.total == Usage(1600, 320, 640)
    assert t.total_cost == pytest.approx(16 * ONE_CALL_COST)
    assert current_scope.get() is None


def test_calls_outside_the_block_are_not_counted() -> None:
    m = model()
    m.invoke("before")
    with track() as t:
        m.invoke("inside")
    m.invoke("after")
    assert t.requests == 1


def test_nested_track_blocks_both_record() -> None:
    m = model()
    with track() as outer:
        m.invoke("outer only")
        with track() as inner:
            m.batch(["a", "b"])
        m.invoke("outer only")
    assert inner.requests == 2
    assert outer.requests == 4


def test_the_same_tracker_nested_counts_once() -> None:
    m = model()
    t = UsageTracker()
    with track(t), track(t):
        m.invoke("x")
    assert t.requests == 1
    with t:  # a tracker is its own context manager and keeps adding
        m.invoke("y")
    assert t.requests == 2


def test_scope_is_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), track():
        raise RuntimeError("boom")
    assert current_scope.get() is None


def test_threads_started_by_hand_record_with_their_own_block() -> None:
    m = model()
    shared = UsageTracker()

    def worker() -> None:
        with shared:
            m.invoke("from a thread")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert shared.requests == 8


def test_async_with_track() -> None:
    m = model()

    async def main() -> UsageTracker:
        async with track() as t:
            await m.ainvoke("x")
        return t

    assert asyncio.run(main()).requests == 1


def test_tracked_stream_counts_usage_once_stream_is_consumed() -> None:
    m = model()
    with track() as t:
        chunks = list(m.stream("hello"))
    assert len(chunks) > 1
    assert t.requests == 1 and t.total == REPLY_USAGE


def test_unknown_model_is_counted_without_cost() -> None:
    m = model("my-local-llm")
    with pytest.warns(UserWarning, match="my-local-llm"), track() as t:
        m.invoke("x")
        m.invoke("y")
    assert t.requests == 2 and t.unknown_cost_calls == 2 and t.total_cost == 0.0


# ----------------------------------------------------------------------------- JSON and the table
def _sample() -> UsageTracker:
    t = UsageTracker("nightly")
    t.record("gpt-4o-mini", Usage(12_000, 2000, 1000), cost=0.0029)
    t.record("gpt-4o", Usage(100, 20), cost=0.00045)
    t.record("gpt-4o", Usage(100, 20), cost=0.0, cached=True)
    t.record("llama-local", Usage(50, 5), cost=None)
    return t


def test_json_round_trip(tmp_path: Path) -> None:
    t = _sample()
    data = json.loads(t.to_json())
    assert data["format"] == "maru.usage/1"
    assert data["totals"]["requests"] == 3 and data["totals"]["cache_hits"] == 1
    again = UsageTracker.from_dict(data)
    assert again.by_model() == t.by_model() and again.name == "nightly"
    path = t.save(tmp_path / "usage.json")
    loaded = UsageTracker.load(path)
    assert loaded.by_model() == t.by_model()
    assert loaded.total == t.total and loaded.total_cost == pytest.approx(t.total_cost)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format": "other/9", "models": {}}', "unsupported usage report format"),
        ('{"models": 3}', '"models" object'),
        ('{"models": {"m": {"requests": -1}}}', "requests must be a non-negative number"),
        ('{"models": {"m": {"cost": "free"}}}', "cost must be"),
    ],
)
def test_load_rejects_bad_reports(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        UsageTracker.load(path)
    assert "report.json" in str(info.value)


def test_merge() -> None:
    a, b = _sample(), _sample()
    a.merge(b)
    assert a.requests == 6 and a.cache_hits == 2
    assert a.by_model()["gpt-4o-mini"].input_tokens == 24_000


def test_table_shows_models_totals_hits_and_cost() -> None:
    console = Console(width=100, record=True)
    console.print(_sample())
    text = console.export_text()
    for expected in ("gpt-4o-mini", "gpt-4o", "llama-local", "total", "12,150", "unknown", "25% hit rate"):
        assert expected in text, expected
    assert "$0.003350*" in text  # known cost, marked as incomplete
    assert "llama-local" in text.split("Cost unknown")[1]


def test_empty_tracker_table() -> None:
    console = Console(width=80, record=True)
    console.print(UsageTracker().table())
    assert "0 calls" in console.export_text()


def test_model_usage_from_dict_ignores_unknown_fields() -> None:
    assert ModelUsage.from_dict({"requests": 2, "future_field": 1}).requests == 2


def test_streamed_is_read_like_requests_and_cache_hits() -> None:
    # docs/usage.md: per model and in total, `streamed` counts the requests that were streams
    m = model()
    with track() as t:
        list(m.stream("one"))
        m.invoke("two")

        async def main() -> None:
            async for _ in m.astream("three"):
                pass

        asyncio.run(main())
    assert t.streamed == 2 and t.requests == 3
    assert t.by_model()["gpt-4o-mini"].streamed == 2
