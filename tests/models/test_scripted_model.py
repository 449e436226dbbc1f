"""ScriptedChatModel: the test double every offline test and example runs on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from maru.core import runnable
from maru.errors import ConfigurationError
from maru.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
)
from maru.models import ScriptedChatModel


def total(chunks: list[AIMessageChunk]) -> AIMessage:
    acc = chunks[0]
    for chunk in chunks[1:]:
        acc = acc + chunk
    return acc.to_message()


def test_invoke_returns_replies_in_order_with_usage_and_metadata() -> None:
    model = ScriptedChatModel(["first", "second reply"])
    one = model.invoke("hi")
    two = model.invoke([SystemMessage("be brief"), HumanMessage("a much longer question " * 10)])
    assert (one.content, two.content) == ("first", "second reply")
    assert one.usage is not None and two.usage is not None
    assert one.usage.output_tokens >= 1 and two.usage.output_tokens > one.usage.output_tokens
    assert two.usage.input_tokens > one.usage.input_tokens > 0  # grows with the prompt
    assert one.response_metadata == {"model_name": "scripted", "finish_reason": "stop"}


def test_running_out_of_replies_says_what_to_do_and_cycle_starts_over() -> None:
    model = ScriptedChatModel(["only"])
    model.invoke("x")
    with pytest.raises(ConfigurationError, match="ran out of replies.*cycle=True"):
        model.invoke("x")
    cycling = ScriptedChatModel(["a", "b"], cycle=True)
    assert [cycling.invoke("x").text for _ in range(5)] == ["a", "b", "a", "b", "a"]
    cycling.reset()
    assert cycling.invoke("x").text == "a" and len(cycling.calls) == 1


def test_callable_reply_sees_the_messages() -> None:
    model = ScriptedChatModel(
        [lambda msgs: f"you said {msgs[-1].text!r}", lambda msgs: AIMessage("msg")]
    )
    assert model.invoke([("system", "s"), ("human", "ping")]).text == "you said 'ping'"
    assert model.invoke("x").text == "msg"


def test_exception_replies_are_raised_and_the_script_goes_on() -> None:
    model = ScriptedChatModel([TimeoutError("slow"), ValueError, "recovered"])
    with pytest.raises(TimeoutError, match="slow"):
        model.invoke("x")
    with pytest.raises(ValueError):
        model.invoke("x")
    assert model.invoke("x").text == "recovered"
    assert len(model.calls) == 3


def test_exception_replies_work_with_retry_and_fallbacks() -> None:
    model = ScriptedChatModel([ConnectionError("blip"), "ok"])
    chain = model.with_retry(retry_on=ConnectionError, initial_delay=0, jitter=False)
    assert chain.invoke("x").text == "ok"
    streaming = ScriptedChatModel([ConnectionError("blip"), "streamed ok"])
    retried = streaming.with_retry(retry_on=ConnectionError, initial_delay=0, jitter=False)
    assert "".join(c.text for c in retried.stream("x")) == "streamed ok"
    fallback = ScriptedChatModel([KeyError("down")]).with_fallbacks([ScriptedChatModel(["backup"])])
    assert "".join(c.text for c in fallback.stream("x")) == "backup"


def test_bad_reply_type_is_rejected_clearly() -> None:
    model = ScriptedChatModel([42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="scripted reply must be"):
        model.invoke("x")


@pytest.mark.parametrize(
    "text", ["Hello  there,\nworld!  ", "  leading", "one", "", "한국어 문장 입니다."]
)
def test_stream_pieces_join_to_the_exact_text_and_sum_to_invoke(text: str) -> None:
    chunks = list(ScriptedChatModel([text]).stream("q"))
    pieces = [c.content for c in chunks[:-1]]
    assert "".join(pieces) == text
    if len(text.split()) > 1:
        assert len(pieces) == len(text.split())  # token by token, not one lump
    assert chunks[-1].usage is not None and all(c.usage is None for c in chunks[:-1])
    assert total(chunks) == ScriptedChatModel([text]).invoke("q")


def test_tool_calls_stream_as_tool_call_chunks_and_sum_to_invoke() -> None:
    reply = AIMessage(
        "Let me look.",
        tool_calls=[
            ToolCall("search", {"q": "maru", "k": 3}, "call_1"),
            ToolCall("clock", {}, "call_2"),
        ],
    )
    invoked = ScriptedChatModel([reply]).invoke("q")
    assert invoked.tool_calls == reply.tool_calls
    assert invoked.tool_calls is not reply.tool_calls  # a copy: callers may mutate their result
    assert invoked.response_metadata["finish_reason"] == "tool_calls"
    assert invoked.usage is not None and invoked.usage.output_tokens > 3

    chunks = list(ScriptedChatModel([reply]).stream("q"))
    call_chunks = [tc for c in chunks for tc in c.tool_call_chunks]
    assert call_chunks[0] == ToolCallChunk(0, "call_1", "search", "")
    assert {c.index for c in call_chunks} == {0, 1}
    assert all(not c.tool_calls for c in chunks)  # streamed as pieces, parsed only when summed
    assert total(chunks) == invoked


def test_given_usage_and_metadata_are_kept() -> None:
    from maru.messages import Usage

    reply = AIMessage(
        "x", usage=Usage(100, 20, 50), response_metadata={"finish_reason": "length"}, id="m1"
    )
    out = ScriptedChatModel([reply]).invoke("q")
    assert out.usage == Usage(100, 20, 50)
    assert out.response_metadata["finish_reason"] == "length" and out.id == "m1"


def test_calls_record_messages_and_bound_params() -> None:
    model = ScriptedChatModel(["a", "b"], temperature=0.2)
    model.bind(stop="END", max_tokens=5).invoke([("system", "sys"), ("human", "hello")])
    model.invoke("plain")
    first, second = model.calls
    assert [m.text for m in first.messages] == ["sys", "hello"]
    assert first.params == {
        "model": "scripted",
        "temperature": 0.2,
        "stop": ["END"],
        "max_tokens": 5,
    }
    assert second.params == {"model": "scripted", "temperature": 0.2}


def test_calls_history_is_bounded() -> None:
    model = ScriptedChatModel(["x"], cycle=True, max_calls=10)
    for _ in range(25):
        model.invoke("q")
    assert 5 <= len(model.calls) <= 10


def test_batch_keeps_input_order() -> None:
    model = ScriptedChatModel([lambda m: m[-1].text.upper()], cycle=True)
    assert [m.text for m in model.batch(["a", "b", "c"])] == ["A", "B", "C"]
    assert [c.messages[0].text for c in model.calls] == ["a", "b", "c"]


def test_io_bound_batch_runs_concurrently_and_every_reply_is_used_once() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def reply(messages: list) -> str:
        barrier.wait()  # only passes if three calls are in flight at once
        return messages[-1].text

    model = ScriptedChatModel([reply], cycle=True, io_bound=True)
    assert [m.text for m in model.batch(["1", "2", "3"], max_concurrency=3)] == ["1", "2", "3"]


def test_async_paths() -> None:
    async def main() -> tuple[AIMessage, list[AIMessageChunk], list[AIMessage]]:
        model = ScriptedChatModel(["async hello world", "streamed reply", "x", "y"])
        one = await model.ainvoke("q")
        chunks = [c async for c in model.astream("q")]
        many = await model.abatch(["1", "2"])
        return one, chunks, many

    one, chunks, many = asyncio.run(main())
    assert one.text == "async hello world"
    assert [c.content for c in chunks[:-1]] == ["streamed", " reply"]
    assert chunks[-1].usage is not None
    assert [m.text for m in many] == ["x", "y"]


def test_in_a_chain_and_its_events() -> None:
    model = ScriptedChatModel(["four words in here"])
    chain = (
        runnable(lambda q: [("system", "answer"), ("human", q)])
        | model
        | (lambda m: m.text.upper())
    )

    async def events() -> list:
        return [e async for e in chain.astream_events("question")]

    seen = asyncio.run(events())
    streamed = [e.data["chunk"].content for e in seen if e.event == "on_chat_model_stream"]
    assert streamed == ["four", " words", " in", " here", ""]
    end = next(e for e in seen if e.event == "on_chat_model_end")
    assert end.name == "ScriptedChatModel" and end.data["output"].usage is not None
    assert model.calls[0].messages[1].text == "question"
