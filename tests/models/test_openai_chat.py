"""OpenAIChat through the real ``openai`` SDK over a real socket to a local chat-completions server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from maru.errors import ConfigurationError, OutputParserError, ProviderError
from maru.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
)
from maru.models import OpenAIChat

from .conftest import API_KEY, MODEL, FakeChatServer, Reply, Slow, Status


def make(server: FakeChatServer, **kwargs: Any) -> OpenAIChat:
    kwargs.setdefault("timeout", 10)
    return OpenAIChat(MODEL, base_url=server.base_url, api_key=API_KEY, **kwargs)


def total(chunks: list[AIMessageChunk]) -> AIMessage:
    acc = chunks[0]
    for chunk in chunks[1:]:
        acc = acc + chunk
    return acc.to_message()


class GetWeather(BaseModel):
    """Current weather for a city."""

    city: str
    unit: str = "celsius"


WEATHER_CALL = Reply(
    tool_calls=[("call_a1", "GetWeather", {"city": "Seoul", "unit": "celsius"})], usage=(40, 12, 0)
)


# --------------------------------------------------------------------------- invoke
def test_invoke_sends_the_request_and_reads_message_and_usage(server: FakeChatServer) -> None:
    server.script(Reply("Hello from the server.", usage=(25, 6, 16), id="chatcmpl-42"))
    model = make(server, temperature=0.3, max_tokens=64)
    out = model.invoke([SystemMessage("Be brief."), HumanMessage("Hi")])
    assert out == AIMessage(
        "Hello from the server.",
        id="chatcmpl-42",
        usage=Usage(25, 6, 16),  # prompt_tokens_details.cached_tokens -> cached_tokens
        response_metadata={"model_name": MODEL, "finish_reason": "stop"},
    )
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == MODEL
    assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 64
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert "stream" not in request.body


def test_call_time_params_and_unknown_params_go_into_the_body(server: FakeChatServer) -> None:
    model = make(server, seed=1, top_k=40)  # seed: SDK parameter; top_k: vLLM-only extra
    out = model.invoke("ping", stop="END", temperature=0)
    assert out.text == "echo: ping"
    body = server.requests[0].body
    assert body["seed"] == 1 and body["top_k"] == 40
    assert body["stop"] == ["END"] and body["temperature"] == 0


def test_ainvoke_and_async_client_reuse(server: FakeChatServer) -> None:
    model = make(server)

    async def main() -> tuple[list[AIMessage], bool]:
        first = model.async_client
        results = await asyncio.gather(model.ainvoke("a"), model.ainvoke("b"), model.ainvoke("c"))
        return list(results), model.async_client is first

    results, reused = asyncio.run(main())
    assert sorted(m.text for m in results) == ["echo: a", "echo: b", "echo: c"]
    assert all(m.usage == Usage(11, 7, 0) for m in results)
    assert reused
    # a new event loop gets a client of its own (an async pool belongs to its loop)
    assert asyncio.run(model.ainvoke("again")).text == "echo: again"


def test_sync_client_is_created_once(server: FakeChatServer) -> None:
    model = make(server)
    client = model.client
    assert [m.text for m in model.batch(["x", "y", "z"])] == ["echo: x", "echo: y", "echo: z"]
    assert model.client is client and len(server.requests) == 3


# --------------------------------------------------------------------------- streaming
def test_stream_yields_tokens_then_usage_and_sums_to_invoke(server: FakeChatServer) -> None:
    reply = Reply("Streaming works token by token.", usage=(30, 9, 8))
    server.script(reply, reply)
    model = make(server)
    chunks = list(model.stream("go"))
    texts = [c.content for c in chunks if c.content]
    assert texts == ["Streaming", " works", " token", " by", " token."]
    assert chunks[-1].usage == Usage(30, 9, 8)
    assert all(c.usage is None for c in chunks[:-1])
    request = server.requests[0].body
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert total(chunks) == model.invoke("go")


def test_streamed_tool_calls_become_tool_call_chunks(server: FakeChatServer) -> None:
    server.script(
        Reply(
            "Checking.",
            tool_calls=[
                ("call_1", "GetWeather", {"city": "Busan"}),
                ("call_2", "GetTime", {"tz": "Asia/Seoul"}),
            ],
        )
    )
    chunks = list(make(server).stream("weather and time?"))
    pieces = [tc for c in chunks for tc in c.tool_call_chunks]
    assert len(pieces) > 4  # names and argument fragments arrived in separate deltas
    assert {p.index for p in pieces} == {0, 1}
    assert all(p.args == "" or p.name == "" for p in pieces)
    message = total(chunks)
    assert message.text == "Checking."
    assert message.tool_calls == [
        ToolCall("GetWeather", {"city": "Busan"}, "call_1"),
        ToolCall("GetTime", {"tz": "Asia/Seoul"}, "call_2"),
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_astream(server: FakeChatServer) -> None:
    server.script(Reply("async streaming here", usage=(5, 3, 0)))

    async def main() -> list[AIMessageChunk]:
        return [c async for c in make(server).astream("q")]

    chunks = asyncio.run(main())
    assert "".join(c.text for c in chunks) == "async streaming here"
    assert chunks[-1].usage == Usage(5, 3, 0)
    assert total(chunks).id == "chatcmpl-fake-1"


def test_stream_usage_can_be_turned_off(server: FakeChatServer) -> None:
    chunks = list(make(server, stream_usage=False).stream("q"))
    assert "stream_options" not in server.requests[0].body
    assert all(c.usage is None for c in chunks) and total(chunks).text == "echo: q"


# --------------------------------------------------------------------------- tools and structured output
def test_bind_tools_round_trip(server: FakeChatServer) -> None:
    def local_time(tz: str) -> str:
        """Local time in a time zone.

        Args:
            tz: IANA time zone name.
        """
        return "12:00"

    server.script(WEATHER_CALL, Reply("It is sunny in Seoul."))
    model = make(server).bind_tools([GetWeather, local_time], tool_choice="auto")
    first = model.invoke("Weather in Seoul?")
    assert first.tool_calls == [
        ToolCall("GetWeather", {"city": "Seoul", "unit": "celsius"}, "call_a1")
    ]
    assert first.content == "" and first.usage == Usage(40, 12, 0)

    sent = server.requests[0].body
    assert sent["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in sent["tools"]] == ["GetWeather", "local_time"]
    weather = sent["tools"][0]["function"]
    assert weather["description"] == "Current weather for a city."
    assert weather["parameters"]["required"] == ["city"]
    assert (
        sent["tools"][1]["function"]["parameters"]["properties"]["tz"]["description"]
        == "IANA time zone name."
    )

    history = [
        HumanMessage("Weather in Seoul?"),
        first,
        ToolMessage('{"sky": "sunny"}', tool_call_id="call_a1"),
    ]
    assert model.invoke(history).text == "It is sunny in Seoul."
    assert server.requests[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a1",
                    "type": "function",
                    "function": {
                        "name": "GetWeather",
                        "arguments": '{"city": "Seoul", "unit": "celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a1", "content": '{"sky": "sunny"}'},
    ]


def test_with_structured_output_json_schema(server: FakeChatServer) -> None:
    server.script(
        Reply(json.dumps({"city": "Jeju", "unit": "kelvin"})),
        Reply("not json yet"),  # repaired once, then
        Reply("not json at all"),
    )
    chain = make(server).with_structured_output(GetWeather)
    assert chain.invoke("Jeju in kelvin") == GetWeather(city="Jeju", unit="kelvin")
    fmt = server.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "GetWeather"
    assert fmt["json_schema"]["schema"]["properties"]["city"] == {"type": "string"}
    with pytest.raises(OutputParserError) as info:
        chain.invoke("again")
    assert info.value.raw == "not json at all"


def test_with_structured_output_tool_method_streams(server: FakeChatServer) -> None:
    server.script(WEATHER_CALL)
    chain = make(server).with_structured_output(GetWeather, method="tool")
    assert list(chain.stream("Seoul")) == [GetWeather(city="Seoul")]
    body = server.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "GetWeather"}}
    assert body["stream"] is True


# --------------------------------------------------------------------------- errors and retries
def test_rate_limit_is_retried_by_the_sdk(server: FakeChatServer) -> None:
    server.script(Status(429, "slow down"), Reply("finally"))
    assert make(server, max_retries=2).invoke("q").text == "finally"
    assert len(server.requests) == 2
    assert server.requests[1].headers.get("x-stainless-retry-count") == "1"


def test_persistent_server_error_surfaces_after_retries(server: FakeChatServer) -> None:
    server.default = Status(500, "boom")
    with pytest.raises(openai.InternalServerError) as info:
        make(server, max_retries=1).invoke("q")
    assert len(server.requests) == 2  # one try + one retry
    assert any("after 1 SDK retries" in note for note in info.value.__notes__)


def test_persistent_server_error_in_a_stream(server: FakeChatServer) -> None:
    server.default = Status(503, "overloaded")
    with pytest.raises(openai.InternalServerError):
        list(make(server, max_retries=0).stream("q"))
    assert len(server.requests) == 1


def test_auth_error_becomes_provider_error_without_the_key(server: FakeChatServer) -> None:
    server.script(Status(401, f"Incorrect API key provided: {API_KEY}"))
    model = make(server, max_retries=3)
    with pytest.raises(ProviderError) as info:
        model.invoke("q")
    message = str(info.value)
    assert "401" in message and "OPENAI_API_KEY" in message
    assert API_KEY not in message and API_KEY not in repr(model)
    assert isinstance(info.value.__cause__, openai.AuthenticationError)
    assert info.value.status_code == 401  # type: ignore[attr-defined]
    assert len(server.requests) == 1  # auth errors are not retried


def test_bad_request_and_not_found_say_what_to_check(server: FakeChatServer) -> None:
    server.script(Status(400, "temperature must be <= 2"), Status(404, "model 'nope' not found"))
    model = make(server)
    with pytest.raises(ProviderError, match="temperature must be <= 2.*Check the parameters"):
        model.invoke("q", temperature=5)
    with pytest.raises(ProviderError, match="not found.*Check the model name"):
        asyncio.run(model.ainvoke("q"))


def test_slow_response_times_out(server: FakeChatServer) -> None:
    server.script(Slow(2.0))
    with pytest.raises(openai.APITimeoutError):
        make(server, timeout=0.3, max_retries=0).invoke("q")

    server.script(Slow(2.0))

    async def main() -> None:
        await make(server, timeout=0.3, max_retries=0).ainvoke("q")

    with pytest.raises(openai.APITimeoutError):
        asyncio.run(main())


def test_connection_refused_hints_at_the_server() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=2)
    with pytest.raises(openai.APIConnectionError) as info:
        model.invoke("q")
    assert any("running and reachable" in note for note in info.value.__notes__)


# --------------------------------------------------------------------------- configuration
def test_configuration_from_environment(
    server: FakeChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("MARU_MODEL", "env-model")
    model = OpenAIChat()  # a local server with no key: a placeholder key is sent
    assert model.model_name == "env-model" and model.base_url == server.base_url
    model.invoke("q")
    assert server.requests[0].body["model"] == "env-model"
    assert server.requests[0].headers["authorization"] == "Bearer no-key"


def test_missing_key_or_model_raise_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY.*OPENAI_BASE_URL"):
        OpenAIChat("gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="MARU_MODEL"):
        OpenAIChat(base_url="http://127.0.0.1:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-abcdef")
    model = OpenAIChat()
    assert model.model_name == "gpt-4o-mini" and model.base_url is None
    assert "sk-from-env" not in repr(model) and "sk-from-env" not in repr(model.bind(stop="x"))


def test_importing_maru_models_does_not_import_openai() -> None:
    code = "import sys, maru.models; assert 'openai' not in sys.modules, 'openai imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wire_format_of_every_message_kind() -> None:
    from maru.messages import ToolCallChunk
    from maru.models.openai import to_openai_messages

    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
    ]
    streamed = AIMessageChunk(tool_call_chunks=[ToolCallChunk(0, "c9", "f", '{"x": 1}')])
    wire = to_openai_messages(
        [
            SystemMessage("sys"),
            HumanMessage(parts, name="kim"),
            AIMessage("plain answer"),
            streamed,
            ToolMessage("done", tool_call_id="c9"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": parts, "name": "kim"},
        {"role": "assistant", "content": "plain answer"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c9", "content": "done"},
    ]


def test_abandoned_stream_leaves_the_model_usable(server: FakeChatServer) -> None:
    model = make(server)
    stream = model.stream("one two three four five")
    first = next(stream)
    assert first.response_metadata["model_name"] == MODEL
    stream.close()
    assert model.invoke("after").text == "echo: after"


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        (None, "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
        ("https://my-team.openai.azure.com/openai/v1", "azure.ai.openai"),
        ("http://localhost:8000/v1", "openai"),  # vLLM, Ollama …: the API they speak
        ("https://evil.example/generativelanguage.googleapis.com", "openai"),  # hosts, not paths
        ("https://generativelanguage.googleapis.com.evil.example/v1", "openai"),
    ],
)
def test_the_provider_is_named_after_the_service_behind_base_url(base_url, provider) -> None:
    model = OpenAIChat("m", base_url=base_url, api_key="sk-test")
    assert model.provider == provider
