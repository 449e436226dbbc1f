"""Run events: nothing built when nobody listens; a correct run tree when someone does."""

import asyncio
import threading

import pytest

from maru import parallel, runnable
from maru.core import events, listen


def add1(x):
    return x + 1


def test_no_events_are_built_when_nobody_listens(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("a run was built while nobody listened")

    monkeypatch.setattr(events, "_open", explode)
    monkeypatch.setattr(events, "_emit", explode)
    chain = runnable(add1) | add1 | {"a": add1}
    assert chain.invoke(1) == {"a": 4}
    assert list(chain.stream(1)) == [{"a": 4}]
    assert asyncio.run(chain.ainvoke(1)) == {"a": 4}


def test_invoke_events_form_a_tree():
    seen = []
    chain = (runnable(add1, name="one") | runnable(add1, name="two")).with_config(run_name="root")
    with listen(seen.append):
        assert chain.invoke(1) == 3
    assert [(e.event, e.name) for e in seen] == [
        ("on_chain_start", "root"),
        ("on_chain_start", "one"),
        ("on_chain_end", "one"),
        ("on_chain_start", "two"),
        ("on_chain_end", "two"),
        ("on_chain_end", "root"),
    ]
    root = seen[0]
    assert root.parent_id is None and root.trace_id == root.run_id
    for child in seen[1:5]:
        assert child.parent_id == root.run_id
        assert child.trace_id == root.run_id
        assert child.parent_ids == (root.run_id,)
    assert seen[2].data == {"input": 1, "output": 2}
    assert seen[-1].data["output"] == 3


def test_listening_ends_with_the_block():
    seen = []
    with listen(seen.append):
        runnable(add1).invoke(1)
    runnable(add1).invoke(1)
    assert len(seen) == 2


def test_error_event_carries_the_exception():
    seen = []

    def boom(x):
        raise ValueError("bad input")

    with listen(seen.append), pytest.raises(ValueError):
        (runnable(add1) | boom).invoke(1)
    errors = [e for e in seen if e.phase == "error"]
    assert [e.name for e in errors] == ["boom", "Sequence"]
    assert isinstance(errors[0].data["error"], ValueError)


def test_a_failing_listener_does_not_break_the_chain():
    def bad_listener(event):
        raise RuntimeError("observer bug")

    with listen(bad_listener):
        assert (runnable(add1) | add1).invoke(1) == 3


def test_events_keep_their_parent_across_threads():
    seen = []
    lock = threading.Lock()

    def record(e):
        with lock:
            seen.append(e)

    slow = runnable(add1, io_bound=True, name="branch")
    chain = runnable(add1, name="first") | parallel(a=slow, b=slow)
    with listen(record):
        chain.invoke(0)
    parallel_start = next(e for e in seen if e.name == "Parallel" and e.phase == "start")
    branch_starts = [e for e in seen if e.name == "branch" and e.phase == "start"]
    assert len(branch_starts) == 2
    assert all(e.parent_id == parallel_start.run_id for e in branch_starts)


def test_astream_events_yields_starts_stream_chunks_and_ends():
    def letters(chunks):  # a generator step transforms the stream of its input chunks
        for text in chunks:
            yield from text

    chain = runnable(add1, name="prep") | runnable(lambda x: "ab" * x, name="make") | runnable(letters, name="split")

    async def main():
        return [e async for e in chain.astream_events(0)]

    got = asyncio.run(main())
    names = [(e.event, e.name) for e in got]
    assert names[0] == ("on_chain_start", "Sequence")
    assert names[-1] == ("on_chain_end", "Sequence")
    root_stream = [e.data["chunk"] for e in got if e.name == "Sequence" and e.phase == "stream"]
    assert root_stream == ["a", "b"]
    assert got[-1].data["output"] == "ab"
    split_end = next(e for e in got if e.name == "split" and e.phase == "end")
    assert split_end.data["input"] == "ab"  # transforms report the input they consumed
    for name in ("prep", "make", "split"):
        phases = [e.phase for e in got if e.name == name]
        assert phases[0] == "start" and phases[-1] == "end"


def test_astream_events_filters_and_reraises():
    def boom(x):
        raise KeyError("nope")

    chain = runnable(add1, name="keep") | runnable(boom, name="boom")

    async def main():
        seen = []
        with pytest.raises(KeyError):
            async for e in chain.astream_events(1, include_names=["keep"]):
                seen.append(e)
        return seen

    seen = asyncio.run(main())
    assert {e.name for e in seen} == {"keep"}
    assert [e.phase for e in seen] == ["start", "stream", "end"]


def test_sync_stream_events_do_not_leak_context_between_chunks():
    seen = []

    def gen(_):
        yield 1
        yield 2

    chain = runnable(gen, name="gen")
    with listen(seen.append):
        for _ in chain.stream(None):
            runnable(add1, name="outside").invoke(1)  # consumer code between chunks
    outside = [e for e in seen if e.name == "outside" and e.phase == "start"]
    assert outside and all(e.parent_id is None for e in outside)
