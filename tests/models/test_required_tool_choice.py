"""``tool_choice="required"`` on servers that lack it (llama.cpp's answers it with HTTP 500 and an
empty message): one tool becomes a named choice; with several, a refusal switches the endpoint to
``"auto"`` plus a system note, once per process. Against a scripted server over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from maru.errors import ProviderError
from maru.models import OpenAIChat
from maru.models import openai as openai_module

from .conftest import EmptyStream, FakeChatServer, Reply, Status


def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def clock(city: str) -> str:
    """The time in a city."""
    return "noon"


CALL = Reply(tool_calls=[("call_1", "weather", {"city": "Seoul"})])


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    openai_module._REQUIRED_REFUSED.forget()
    yield
    openai_module._REQUIRED_REFUSED.forget()


def chat(server: FakeChatServer) -> OpenAIChat:
    return OpenAIChat("fake-model", base_url=server.base_url, max_retries=0)


def test_one_tool_is_named_instead_of_required(server: FakeChatServer) -> None:
    server.script(CALL)
    reply = chat(server).bind_tools([weather], tool_choice="required").invoke("Seoul?")
    assert reply.tool_calls[0].name == "weather"
    sent = server.requests[0].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_several_tools_fall_back_once_on_an_empty_500_and_remember(server: FakeChatServer) -> None:
    server.script(Status(500, ""), CALL, CALL)
    model = chat(server).bind_tools([weather, clock], tool_choice="required")
    assert model.invoke([("system", "Be brief."), ("human", "Seoul?")]).tool_calls[0].name == "weather"
    refused, emulated = (r.body for r in server.requests)
    assert refused["tool_choice"] == "required"
    assert emulated["tool_choice"] == "auto"
    system = emulated["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert "weather, clock" in system["content"]
    list(model.stream("Seoul?"))  # remembered: the stream goes straight to the emulation
    assert [r.body["tool_choice"] for r in server.requests] == ["required", "auto", "auto"]


def test_async_paths_fall_back_too(server: FakeChatServer) -> None:
    server.script(Status(400, "tool_choice 'required' is not supported"), CALL)
    model = chat(server).bind_tools([weather, clock], tool_choice="required")

    async def go() -> list[str]:
        chunks = [chunk async for chunk in model.astream("Seoul?")]
        return [call.name for call in sum(chunks[1:], chunks[0]).to_message().tool_calls]

    assert asyncio.run(go()) == ["weather"]
    assert [r.body["tool_choice"] for r in server.requests] == ["required", "auto"]
    assert server.requests[1].body["messages"][0]["role"] == "system"


def test_errors_that_are_not_refusals_are_raised(server: FakeChatServer) -> None:
    model = chat(server).bind_tools([weather, clock], tool_choice="required")
    server.script(Status(500, "the GPU caught fire"))
    with pytest.raises(openai.InternalServerError):
        model.invoke("Seoul?")
    server.script(Status(401, "bad key"))
    with pytest.raises(ProviderError, match="401"):
        model.invoke("Seoul?")
    server.script(Status(503, ""))  # a gateway's empty 503 is an outage, not a refusal
    with pytest.raises(openai.InternalServerError):
        model.invoke("Seoul?")
    assert [r.body["tool_choice"] for r in server.requests] == ["required"] * 3


def test_other_tool_choices_are_sent_as_given(server: FakeChatServer) -> None:
    server.script(Status(500, ""))
    with pytest.raises(openai.InternalServerError):
        chat(server).bind_tools([weather, clock], tool_choice="auto").invoke("Seoul?")
    assert len(server.requests) == 1


def test_an_empty_stream_is_asked_again_without_streaming(server: FakeChatServer) -> None:
    """llama.cpp's server cannot stream tools with tool_choice="auto" (the emulation's choice): it
    answers 200 and sends no event. The reply must not pass for an empty one."""
    model = chat(server).bind_tools([weather, clock], tool_choice="auto")
    server.script(EmptyStream(), CALL, EmptyStream(), CALL)
    chunks = list(model.stream("Seoul?"))
    assert len(chunks) == 1 and chunks[0].tool_calls[0].name == "weather"
    assert [r.body.get("stream", False) for r in server.requests] == [True, False]

    async def go() -> list[str]:
        return [call.name for chunk in [c async for c in model.astream("Seoul?")] for call in chunk.tool_calls]

    assert asyncio.run(go()) == ["weather"]
