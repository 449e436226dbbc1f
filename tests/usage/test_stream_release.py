"""A stream closed early gives its budget reservation back at once — closed with ``close()`` /
``aclose()``, dropped, or its consuming task cancelled — whether the model is streamed alone or
inside a wrapper or a chain, traced or not (a trace used to hold the stream, and with it the reservation, until
the tracer let go). What the provider sent before the close is charged."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate
from maru.tracing import tracing
from maru.usage import Budget, track


class DiscardingSink:
    def write(self, runs: list[Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def model() -> ScriptedChatModel:
    reply = AIMessage("one two three four five", usage=Usage(10, 5))
    return ScriptedChatModel([reply], cycle=True, model="gpt-4o-mini", cache=False)


KINDS = ["model", "retried", "chain"]


def steps(kind: str) -> tuple[Any, Any]:
    m = model()
    if kind == "model":
        return m, "hi"
    if kind == "retried":
        return m.with_retry(), "hi"
    return ChatPromptTemplate.from_messages([("human", "{q}")]) | m | StrOutputParser(), {"q": "hi"}


@pytest.fixture(params=["untraced", "traced"])
def traced(request: pytest.FixtureRequest) -> Iterator[None]:
    with tracing([DiscardingSink()]) if request.param == "traced" else contextlib.nullcontext():
        yield


@pytest.mark.parametrize("kind", KINDS)
def test_closing_a_sync_stream_releases_at_once(traced: None, kind: str) -> None:
    step, input = steps(kind)
    with track() as t, Budget(max_requests=1) as budget:
        stream = step.stream(input)
        next(stream)
        assert budget.in_flight == 1
        stream.close()
        assert budget.in_flight == 0 and budget.requests == 1  # charged: the provider sent a chunk
    assert t.streamed == 1


@pytest.mark.parametrize("kind", KINDS)
def test_closing_an_async_stream_releases_at_once(traced: None, kind: str) -> None:
    step, input = steps(kind)

    async def main() -> Budget:
        with Budget(max_requests=1) as budget:
            stream = step.astream(input)
            async for _ in stream:
                break
            assert budget.in_flight == 1
            await stream.aclose()
            assert budget.in_flight == 0 and budget.requests == 1
        return budget

    asyncio.run(main())


async def cancel_after_first_chunk(step: Any, input: Any, *, inside_stream: bool) -> None:
    """Consume ``step.astream(input)`` in a task and cancel the task once the first chunk came:
    between chunks (the consumer is busy) or, ``inside_stream``, while the stream awaits its
    provider. Then give the loop a few turns to close what was dropped."""
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in step.astream(input):
            first_chunk.set()
            if not inside_stream:
                await asyncio.sleep(30)  # cancelled here, between chunks

    task = asyncio.create_task(consume())
    await first_chunk.wait()
    await asyncio.sleep(0)  # the consumer is back at work: in its loop body, or in the stream
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancelled_consumer_releases_its_stream(traced: None, kind: str) -> None:
    step, input = steps(kind)

    async def main() -> None:
        with Budget(max_requests=5) as budget:
            await cancel_after_first_chunk(step, input, inside_stream=False)
            assert budget.in_flight == 0 and budget.requests == 1

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_dropped_async_stream_releases_without_garbage_collection(traced: None, kind: str) -> None:
    import gc

    step, input = steps(kind)

    async def main() -> None:
        with Budget(max_requests=5) as budget:
            stream = step.astream(input)
            async for _ in stream:
                break
            del stream
            for _ in range(3):
                await asyncio.sleep(0)
            assert budget.in_flight == 0

    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()


class SlowSecondChunk(ScriptedChatModel):
    """Sends one chunk, then hangs (a provider stalling mid-stream)."""

    async def _astream_chunks(self, messages: list[Any], params: dict[str, Any]) -> Any:
        from maru.messages import AIMessageChunk

        yield AIMessageChunk("one ")
        await asyncio.sleep(30)
        yield AIMessageChunk("two")


def test_a_stream_cancelled_mid_request_is_charged_for_what_it_produced() -> None:
    # cancelled while waiting for the provider's second chunk: the first was sent, and billed
    m = SlowSecondChunk(["unused"], model="gpt-4o-mini", cache=False)

    async def main() -> None:
        with track() as t, Budget(max_requests=5) as budget:
            await cancel_after_first_chunk(m, "hi", inside_stream=True)
            assert budget.in_flight == 0 and budget.requests == 1
        assert t.requests == 1 and t.total.output_tokens > 0

    asyncio.run(main())
