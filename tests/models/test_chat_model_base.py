"""ChatModel: derived hooks, the single parameter/call choke points, bind_tools, Embeddings."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from maru.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk, Usage
from maru.models import ChatModel, Embeddings, ScriptedChatModel


def text_of(messages: list[BaseMessage]) -> str:
    return " | ".join(m.text for m in messages)


class SyncOnly(ChatModel):
    def __init__(self) -> None:
        super().__init__(model="sync-only")
        self.threads: list[str] = []

    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        self.threads.append(threading.current_thread().name)
        return AIMessage(f"sync: {text_of(messages)}", usage=Usage(3, 2))


class StreamOnly(ChatModel):
    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        yield AIMessageChunk("str")
        yield AIMessageChunk("eamed", tool_call_chunks=[ToolCallChunk(0, "c1", "f", '{"a"')])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(0, args=": 1}")])
        yield AIMessageChunk(usage=Usage(5, 4))


class AsyncStreamOnly(ChatModel):
    async def _astream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        for piece in ("as", "ync"):
            await asyncio.sleep(0)
            yield AIMessageChunk(piece)
        yield AIMessageChunk(usage=Usage(1, 2))


class Nothing(ChatModel):
    pass


def collect(chunks: list[AIMessageChunk]) -> AIMessage:
    acc = chunks[0]
    for chunk in chunks[1:]:
        acc = acc + chunk
    return acc.to_message()


def test_sync_provider_gets_async_and_stream_derived() -> None:
    model = SyncOnly()
    assert model.invoke("hi").text == "sync: hi"
    assert asyncio.run(model.ainvoke("hi")).text == "sync: hi"
    assert model.threads[-1].startswith("maru")  # async ran the sync call on the shared executor
    (chunk,) = list(model.stream("hi"))
    assert chunk.text == "sync: hi" and chunk.usage == Usage(3, 2)

    async def astream() -> list[AIMessageChunk]:
        return [c async for c in model.astream("hi")]

    assert [c.text for c in asyncio.run(astream())] == ["sync: hi"]


def test_stream_provider_gets_invoke_by_summing() -> None:
    model = StreamOnly()
    message = model.invoke("x")
    assert message.text == "streamed"
    assert message.tool_calls[0].args == {"a": 1} and message.usage == Usage(5, 4)
    assert asyncio.run(model.ainvoke("x")) == message
    assert collect(list(model.stream("x"))) == message

    async def astream() -> list[AIMessageChunk]:
        return [c async for c in model.astream("x")]

    assert collect(asyncio.run(astream())) == message


def test_async_stream_provider_gets_sync_paths() -> None:
    model = AsyncStreamOnly()
    assert model.invoke("x") == AIMessage("async", usage=Usage(1, 2))
    assert asyncio.run(model.ainvoke("x")).text == "async"
    assert collect(list(model.stream("x"))).text == "async"


def test_a_model_with_no_provider_hook_says_so() -> None:
    with pytest.raises(TypeError, match="implements none of _generate"):
        Nothing().invoke("x")
    with pytest.raises(TypeError, match="implements none of _generate"):
        asyncio.run(Nothing().ainvoke("x"))


def test_invocation_params_merge_and_normalise() -> None:
    class Answer(BaseModel):
        value: int

    model = ScriptedChatModel([], temperature=0.5, max_tokens=None)
    assert model.invocation_params() == {"model": "scripted", "temperature": 0.5}
    params = model.invocation_params(temperature=None, stop="###", response_format=Answer, seed=7)
    assert params["stop"] == ["###"] and params["seed"] == 7
    assert "temperature" not in params  # an explicit None unsets a default (models that reject it)
    assert params["response_format"]["type"] == "json_schema"
    assert params["response_format"]["json_schema"]["schema"]["properties"] == {
        "value": {"type": "integer"}
    }
    fresh = model.invocation_params()
    fresh["model"] = "mutated"
    assert model.invocation_params()["model"] == "scripted"  # callers get their own dict


class Counting(ScriptedChatModel):
    """Counts the four choke points; every public path must go through exactly one of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []

    def _call(self, messages, params):  # type: ignore[no-untyped-def]
        self.seen.append("call")
        return super()._call(messages, params)

    async def _acall(self, messages, params):  # type: ignore[no-untyped-def]
        self.seen.append("acall")
        return await super()._acall(messages, params)

    def _call_stream(self, messages, params):  # type: ignore[no-untyped-def]
        self.seen.append("call_stream")
        return super()._call_stream(messages, params)

    def _acall_stream(self, messages, params):  # type: ignore[no-untyped-def]
        self.seen.append("acall_stream")
        return super()._acall_stream(messages, params)


def test_every_public_path_goes_through_one_choke_point() -> None:
    class Out(BaseModel):
        x: int

    model = Counting(['{"x": 1}'], cycle=True)
    model.invoke("a")
    model.batch(["a", "b"])
    list(model.stream("a"))
    model.bind(stop="x").invoke("a")
    model.bind_tools([Out]).invoke("a")
    model.with_structured_output(Out).invoke("a")

    async def run() -> None:
        await model.ainvoke("a")
        await model.abatch(["a", "b"])
        [c async for c in model.astream("a")]

    asyncio.run(run())
    assert model.seen == [
        "call", "call", "call", "call_stream", "call", "call", "call",
        "acall", "acall", "acall", "acall_stream",
    ]  # fmt: skip
    assert len(model.calls) == len(model.seen)


def test_bind_tools_binds_schemas_and_choice() -> None:
    class GetWeather(BaseModel):
        """Weather for a city."""

        city: str

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = ScriptedChatModel(["ok"])
    bound = model.bind_tools([GetWeather, add], tool_choice="add", parallel_tool_calls=False)
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["GetWeather", "add"]
    assert bound.kwargs["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert bound.kwargs["parallel_tool_calls"] is False
    bound.invoke("q")
    sent = model.calls[0].params
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert bound.kind == "chat_model" and bound.model_name == "scripted"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", "auto"), ("none", "none"), ("required", "required"), ("any", "required"),
     (True, {"type": "function", "function": {"name": "only"}}), (None, None)],
)  # fmt: skip
def test_tool_choice_forms(choice: Any, expected: Any) -> None:
    bound = ScriptedChatModel([]).bind_tools(
        [{"name": "only", "parameters": {"type": "object"}}], tool_choice=choice
    )
    assert bound.kwargs.get("tool_choice") == expected


def test_tool_choice_errors() -> None:
    model = ScriptedChatModel([])
    tools = [{"name": "a"}, {"name": "b"}]
    with pytest.raises(ValueError, match="names no bound tool.*'a', 'b'"):
        model.bind_tools(tools, tool_choice="c")
    with pytest.raises(ValueError, match="forces the one bound tool"):
        model.bind_tools(tools, tool_choice=True)


class Letters(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), float(t.count("a"))] for t in texts]


def test_embeddings_interface_defaults() -> None:
    emb = Letters()
    assert emb.embed_documents(["aa", "b"]) == [[2.0, 2.0], [1.0, 0.0]]
    assert emb.embed_query("banana") == [6.0, 3.0]
    assert asyncio.run(emb.aembed_documents(["a"])) == [[1.0, 1.0]]
    assert asyncio.run(emb.aembed_query("xa")) == [2.0, 1.0]
    with pytest.raises(TypeError):
        Embeddings()  # type: ignore[abstract]
