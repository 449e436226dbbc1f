"""Streaming: chunks flow through every step that can transform a stream, in order."""

import asyncio

from maru import assign, parallel, passthrough, pick, runnable


def words(text):
    for word in text.split():
        yield word + " "


def upper_stream(chunks):
    for chunk in chunks:
        yield chunk.upper()


async def aupper_stream(chunks):
    async for chunk in chunks:
        yield chunk.upper()


def test_generator_step_streams_and_invoke_gathers():
    chain = runnable(lambda x: x) | runnable(upper_stream)
    assert list(chain.stream("abc")) == ["ABC"]
    producer = runnable(lambda text: text) | runnable(lambda t: t)
    assert producer.invoke("x") == "x"


def test_chunks_pass_through_before_upstream_finishes():
    log = []

    def produce(_):
        for i in range(3):
            log.append(f"produce {i}")
            yield f"{i}"

    def consume(chunks):
        for chunk in chunks:
            log.append(f"consume {chunk}")
            yield chunk

    chain = runnable(produce) | runnable(consume)
    assert list(chain.stream(None)) == ["0", "1", "2"]
    assert log == ["produce 0", "consume 0", "produce 1", "consume 1", "produce 2", "consume 2"]
    assert chain.invoke(None) == "012"


def test_non_streaming_step_gathers_its_input():
    chain = runnable(lambda _: iter(())) | runnable(words) | runnable(upper_stream) | (lambda s: f"[{s}]")
    # words() is a generator *transform*: it receives the upstream stream, so wrap input first
    text_chain = runnable(lambda t: t) | runnable(lambda t: t.split()) | (lambda parts: "-".join(parts))
    assert text_chain.invoke("a b c") == "a-b-c"
    assert list((runnable(lambda t: t) | runnable(upper_stream) | (lambda s: f"[{s}]")).stream("ab")) == ["[AB]"]
    assert chain  # built without error


def test_async_generator_transform_streams():
    chain = runnable(lambda x: x) | runnable(aupper_stream)

    async def main():
        return [c async for c in chain.astream("hi")], await chain.ainvoke("hi")

    chunks, whole = asyncio.run(main())
    assert chunks == ["HI"]
    assert whole == "HI"


def test_sync_generator_transform_in_async_stream():
    def split_chars(chunks):
        for chunk in chunks:
            yield from chunk

    chain = runnable(lambda x: x) | runnable(split_chars) | runnable(upper_stream)

    async def main():
        return [c async for c in chain.astream("abc")]

    assert asyncio.run(main()) == ["A", "B", "C"]
    assert list(chain.stream("abc")) == ["A", "B", "C"]


def test_parallel_streams_keyed_chunks_and_gathers_to_dict():
    def letters(_):
        yield "a"
        yield "b"

    p = parallel(x=runnable(letters), y=lambda _: 1)
    chunks = list(p.stream(None))
    assert {"x": "a"} in chunks and {"x": "b"} in chunks and {"y": 1} in chunks
    assert [c for c in chunks if "x" in c] == [{"x": "a"}, {"x": "b"}]
    assert p.invoke(None) == {"x": "ab", "y": 1}


def test_io_bound_parallel_streams_merge_in_arrival_order():
    async def slow(_):
        await asyncio.sleep(0.05)
        yield "slow"

    async def fast(_):
        yield "fast"

    p = parallel(s=runnable(slow), f=runnable(fast))

    async def main():
        return [c async for c in p.astream(None)]

    assert asyncio.run(main()) == [{"f": "fast"}, {"s": "slow"}]

    @runnable(io_bound=True)
    def slow_sync(_):
        import time

        time.sleep(0.05)
        return "slow"

    fast_sync = runnable(lambda _: "fast", io_bound=True)
    assert list(parallel(s=slow_sync, f=fast_sync).stream(None)) == [{"f": "fast"}, {"s": "slow"}]


def test_assign_streams_input_first_then_new_keys():
    chain = assign(up=lambda d: d["t"].upper())
    chunks = list(chain.stream({"t": "x"}))
    assert chunks == [{"t": "x"}, {"up": "X"}]
    assert chain.invoke({"t": "x"}) == {"t": "x", "up": "X"}


def test_pick_streams_selected_keys():
    chain = assign(up=lambda d: d["t"].upper()) | pick("up", "t")
    assert list(chain.stream({"t": "x", "other": 1})) == [{"t": "x"}, {"up": "X"}]
    assert (assign(up=lambda d: d["t"].upper()) | pick("up")).invoke({"t": "q"}) == "Q"


def test_passthrough_streams_chunks_unchanged():
    def letters(_):
        yield from "abc"

    chain = runnable(letters) | passthrough()
    assert list(chain.stream(None)) == ["a", "b", "c"]
