"""``maru.serve.create_app`` over a real socket: uvicorn on 127.0.0.1, httpx as the client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from maru import runnable
from maru.messages import HumanMessage
from maru.serve import create_app

from .conftest import live_server, read_sse
from .serve_targets import (
    REPLY,
    count_messages,
    leaky,
    picky,
    punctuate,
    travel_chain,
    two_then_fail,
    typed_chain,
)

TRAVEL_INPUT = {"style": "brief", "city": "Seoul"}


@pytest.fixture(scope="module")
def typed_url() -> Iterator[str]:
    with live_server(create_app(typed_chain)) as url:
        yield url


@pytest.fixture(scope="module")
def travel_url() -> Iterator[str]:
    with live_server(create_app(travel_chain())) as url:
        yield url


@pytest.fixture(scope="module")
def misc_urls() -> Iterator[dict[str, str]]:
    """Several small apps, one server each, shared by the tests of this module."""
    apps = {
        "messages": create_app(count_messages),
        "picky": create_app(picky),
        "leaky": create_app(leaky),
        "punctuate": create_app(punctuate, allowed_kwargs=["mark"]),
        "punctuate_closed": create_app(punctuate),
        "broken_stream": create_app(runnable(lambda s: s) | two_then_fail),
    }
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {name: stack.enter_context(live_server(app)) for name, app in apps.items()}


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# ----------------------------------------------------------------------------- invoke
def test_invoke_typed_chain_validates_into_the_model_and_returns_its_dump(
    client: httpx.Client, typed_url: str
) -> None:
    r = client.post(f"{typed_url}/invoke", json={"input": {"text": "hello world", "repeat": 2}})
    assert r.status_code == 200
    assert r.json() == {"output": {"text": "HELLO WORLD HELLO WORLD", "words": 4}}
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0


def test_every_response_has_its_own_request_id(client: httpx.Client, typed_url: str) -> None:
    ids = {client.post(f"{typed_url}/invoke", json={"input": {"text": "a"}}).headers["x-request-id"] for _ in range(3)}
    ids.add(client.post(f"{typed_url}/invoke", content=b"{").headers["x-request-id"])  # errors too
    assert len(ids) == 4


def test_invoke_prompt_model_parser_chain(client: httpx.Client, travel_url: str) -> None:
    r = client.post(f"{travel_url}/invoke", json={"input": TRAVEL_INPUT})
    assert r.status_code == 200
    assert r.json() == {"output": REPLY}


def test_message_dicts_arrive_as_messages(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "tool_calls": [{"id": "1", "name": "f", "args": {}}]},
        {"role": "tool", "content": "42", "tool_call_id": "1"},
    ]
    r = client.post(f"{misc_urls['messages']}/invoke", json={"input": messages})
    assert r.status_code == 200
    assert r.json()["output"] == {
        "count": 4,
        "types": ["SystemMessage", "HumanMessage", "AIMessage", "ToolMessage"],
        "last": "42",
    }


def test_kwargs_reach_the_function(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    url = misc_urls["punctuate"]  # allowed_kwargs=["mark"]
    assert client.post(f"{url}/invoke", json={"input": "hi"}).json() == {"output": "hi!"}
    r = client.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"mark": "?"}})
    assert r.json() == {"output": "hi?"}
    r = client.post(f"{url}/batch", json={"inputs": ["a", "b"], "kwargs": {"mark": "."}})
    assert r.json() == {"outputs": ["a.", "b."]}
    with client.stream("POST", f"{url}/stream", json={"input": "hi", "kwargs": {"mark": "?"}}) as r:
        assert read_sse(r) == [("data", "hi?"), ("end", {})]
    r = client.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"config": {}}})
    assert r.status_code == 422
    assert "config" in error_of(r)["message"]


@pytest.mark.parametrize("route", ["/invoke", "/batch", "/stream", "/stream_events"])
def test_kwargs_are_refused_unless_allowed(client: httpx.Client, misc_urls: dict[str, str], route: str) -> None:
    body: dict[str, Any] = {"inputs": ["hi"]} if route == "/batch" else {"input": "hi"}
    r = client.post(f"{misc_urls['punctuate_closed']}{route}", json={**body, "kwargs": {"mark": "?"}})
    assert r.status_code == 422
    error = error_of(r)
    assert error["type"] == "validation_error"
    assert "['mark']" in error["message"] and "accepts none" in error["message"]
    assert "--kwarg NAME" in error["message"] and "allowed_kwargs=" in error["message"]
    assert error["details"] == [{"loc": ["body", "kwargs", "mark"], "msg": "keyword not allowed", "type": "value_error"}]
    # No kwargs, or empty ones, are fine.
    for kwargs in ({}, None):
        r = client.post(f"{misc_urls['punctuate_closed']}{route}", json={**body, "kwargs": kwargs})
        assert r.status_code == 200, r.text


def test_only_the_allowed_kwargs_pass(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    url = misc_urls["punctuate"]
    r = client.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"mark": "?", "temperature": 2, "config": {}}})
    assert r.status_code == 422
    message = error_of(r)["message"]
    assert "['temperature'] are not allowed" in message and "it accepts ['mark']" in message
    assert "['config'] can never be passed" in message


def test_openapi_shows_kwargs_only_when_allowed(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    closed = client.get(f"{misc_urls['punctuate_closed']}/openapi.json").json()["components"]["schemas"]
    opened = client.get(f"{misc_urls['punctuate']}/openapi.json").json()["components"]["schemas"]
    for name in ("InvokeRequest", "BatchRequest", "StreamEventsRequest"):
        assert "kwargs" not in closed[name]["properties"]
        kwargs = opened[name]["properties"]["kwargs"]
        assert "`mark`" in kwargs["description"]
        ref = next(s["$ref"] for s in kwargs["anyOf"] if "$ref" in s)
        obj = opened[ref.rsplit("/", 1)[-1]]
        assert obj["type"] == "object" and obj["additionalProperties"] is False
        assert list(obj["properties"]) == ["mark"] and obj["properties"]["mark"]["type"] == "string"


@pytest.mark.parametrize("names", [["config"], ["input", "mark"], ["self"], ["not-a-name"], [""]])
def test_reserved_or_invalid_names_cannot_be_allowed(names: list[str]) -> None:
    with pytest.raises(ValueError, match="cannot be allowed as kwargs"):
        create_app(punctuate, allowed_kwargs=names)


def test_allowed_kwargs_must_be_a_list_of_names() -> None:
    with pytest.raises(TypeError, match="list of names"):
        create_app(punctuate, allowed_kwargs="mark")


def test_health(client: httpx.Client, travel_url: str) -> None:
    r = client.get(f"{travel_url}/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "name": "Sequence"}


def test_unknown_route_is_a_json_404(client: httpx.Client, travel_url: str) -> None:
    r = client.post(f"{travel_url}/nope", json={})
    assert r.status_code == 404
    assert error_of(r)["type"] == "http_error"


# ----------------------------------------------------------------------------- batch
def test_batch_keeps_input_order(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    r = client.post(f"{misc_urls['picky']}/batch", json={"inputs": [3, 1, 2], "max_concurrency": 2})
    assert r.status_code == 200
    assert r.json() == {"outputs": [30, 10, 20]}


def test_batch_return_exceptions_puts_errors_in_place(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    r = client.post(f"{misc_urls['picky']}/batch", json={"inputs": [1, -2, 3], "return_exceptions": True})
    assert r.status_code == 200
    assert r.json() == {
        "outputs": [10, {"error": {"type": "ValueError", "message": "negative: -2"}}, 30]
    }


def test_batch_without_return_exceptions_fails_whole(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    r = client.post(f"{misc_urls['picky']}/batch", json={"inputs": [1, -2, 3]})
    assert r.status_code == 500
    assert error_of(r) == {"type": "ValueError", "message": "negative: -2"}


def test_batch_validates_each_input(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    r = client.post(f"{misc_urls['picky']}/batch", json={"inputs": [1, "two", 3]})
    assert r.status_code == 422
    error = error_of(r)
    assert error["message"].startswith("inputs[1]: Input should be a valid integer")
    assert error["message"].endswith("(got a string)")
    assert error["details"][0]["loc"] == ["body", "inputs", 1]


# ----------------------------------------------------------------------------- stream
def test_stream_sends_chunks_in_order_then_end(client: httpx.Client, travel_url: str) -> None:
    expected = list(travel_chain().stream(TRAVEL_INPUT))
    assert len(expected) > 3
    with client.stream("POST", f"{travel_url}/stream", json={"input": TRAVEL_INPUT}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        events = read_sse(r)
    assert [name for name, _ in events] == ["data"] * len(expected) + ["end"]
    assert [data for _, data in events[:-1]] == expected
    assert "".join(data for _, data in events[:-1]) == REPLY


def test_stream_error_mid_stream_is_an_error_event(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    with client.stream("POST", f"{misc_urls['broken_stream']}/stream", json={"input": "x"}) as r:
        assert r.status_code == 200
        events = read_sse(r)
    assert events[:2] == [("data", "x-1"), ("data", "x-2")]
    assert len(events) == 3  # no end after an error: the stream closes
    name, data = events[2]
    assert name == "error"
    assert data["error"]["type"] == "RuntimeError"
    assert data["error"]["status_code"] == 500
    assert "abcd1234efgh5678" not in data["error"]["message"]
    assert data["error"]["message"] == "stream broke; api_key=*** was rejected"


def test_client_disconnect_closes_the_runnable_stream(client: httpx.Client) -> None:
    import asyncio
    import threading

    closed = threading.Event()
    produced: list[int] = []

    @runnable
    async def endless(chunks: Any) -> Any:
        async for _ in chunks:
            pass
        try:
            while True:
                produced.append(1)
                yield len(produced)
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    with live_server(create_app(endless)) as url:
        with client.stream("POST", f"{url}/stream", json={"input": None}) as r:
            lines = r.iter_lines()
            assert [next(lines) for _ in range(2)] == ["event: data", "data: 1"]
        # the client hung up: the server must stop pulling from the runnable and close it
        assert closed.wait(30), "the runnable's stream was not closed after the client left"
        count = len(produced)
        time.sleep(0.2)
        assert len(produced) == count


def test_stream_failure_before_the_first_chunk_is_a_json_error(
    client: httpx.Client, misc_urls: dict[str, str]
) -> None:
    r = client.post(f"{misc_urls['leaky']}/stream", json={"input": "x"})
    assert r.status_code == 500
    assert error_of(r)["type"] == "RuntimeError"


# ----------------------------------------------------------------------------- stream_events
def test_stream_events_carry_the_run_tree(client: httpx.Client, travel_url: str) -> None:
    body = {"input": TRAVEL_INPUT, "config": {"tags": ["web"], "metadata": {"user": "u1"}, "run_name": "trip"}}
    with client.stream("POST", f"{travel_url}/stream_events", json=body) as r:
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        events = read_sse(r)
    assert events[-1] == ("end", {})
    runs = [data for name, data in events[:-1]]
    assert all(name == "data" for name, _ in events[:-1])
    kinds = [e["event"] for e in runs]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    for expected in ("on_prompt_start", "on_prompt_end", "on_chat_model_start", "on_chat_model_stream",
                     "on_chat_model_end", "on_parser_stream", "on_parser_end"):
        assert expected in kinds, expected
    root = runs[0]
    assert root["name"] == "trip" and root["parent_id"] is None  # run_name names the root run only
    assert root["data"]["input"] == TRAVEL_INPUT
    children = [e for e in runs if e["run_id"] != root["run_id"]]
    assert children and all(e["parent_id"] == root["run_id"] for e in children)
    for e in runs:  # the request's tags and metadata reach every run
        assert "web" in e["tags"]
        assert e["metadata"] == {"user": "u1", "request_id": rid}
    model_chunks = [e["data"]["chunk"] for e in runs if e["event"] == "on_chat_model_stream"]
    assert all(c["role"] == "assistant" for c in model_chunks)
    assert "".join(c["content"] for c in model_chunks) == REPLY
    assert runs[-1]["data"]["output"] == REPLY
    prompt_end = next(e for e in runs if e["event"] == "on_prompt_end")
    assert prompt_end["data"]["output"]["messages"][-1] == {"role": "user", "content": "What should I see in Seoul?"}


def test_stream_events_filter_by_kind(client: httpx.Client, travel_url: str) -> None:
    body = {"input": TRAVEL_INPUT, "include_kinds": ["chat_model"]}
    with client.stream("POST", f"{travel_url}/stream_events", json=body) as r:
        events = read_sse(r)
    assert events[-1][0] == "end"
    assert {data["kind"] for _, data in events[:-1]} == {"chat_model"}


def test_stream_events_error(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    with client.stream("POST", f"{misc_urls['leaky']}/stream_events", json={"input": "x"}) as r:
        events = read_sse(r)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "RuntimeError"
    error_events = [d for n, d in events if n == "data" and d["event"].endswith("_error")]
    assert error_events and error_events[0]["data"]["error"]["type"] == "RuntimeError"
    text = json.dumps(events)
    assert "4fT9xQ2LmZ8vB1nC7kD3" not in text and "eyJhbGciOiJIUzI1NiJ9" not in text


# ----------------------------------------------------------------------------- errors
def test_malformed_json_is_422_with_a_message(client: httpx.Client, typed_url: str) -> None:
    r = client.post(
        f"{typed_url}/invoke", content=b'{"input": {"text": "hi",}}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    error = error_of(r)
    assert error["type"] == "validation_error"
    assert error["message"].startswith("the request body is not valid JSON: ")
    assert "character" in error["message"]


def test_wrong_types_are_422_naming_the_field(client: httpx.Client, typed_url: str) -> None:
    r = client.post(f"{typed_url}/invoke", json={"input": {"text": 5, "repeat": "many"}})
    assert r.status_code == 422
    error = error_of(r)
    assert "input.text: Input should be a valid string (got a number)" in error["message"]
    assert "input.repeat: Input should be a valid integer" in error["message"]
    assert {tuple(d["loc"]) for d in error["details"]} == {("body", "input", "text"), ("body", "input", "repeat")}


def test_prompt_variables_are_typed_in_the_request(client: httpx.Client, travel_url: str) -> None:
    r = client.post(f"{travel_url}/invoke", json={"input": {"style": "x", "city": ["Seoul"]}})
    assert r.status_code == 422
    assert error_of(r)["message"] == (
        "input.city: Input should be a string, an integer, a number or a boolean (got an array)"
    )
    r = client.post(f"{travel_url}/invoke", json={"input": {"style": "x", "cty": "Seoul"}})
    assert r.status_code == 422
    message = error_of(r)["message"]
    assert "input.city: Field required" in message and "input.cty: Extra inputs are not permitted" in message


def test_missing_input_unknown_keys_and_bad_config_are_422(client: httpx.Client, typed_url: str) -> None:
    r = client.post(f"{typed_url}/invoke", json={"inputs": {"text": "hi"}})
    assert r.status_code == 422
    assert "input: Field required" in error_of(r)["message"]
    assert "inputs: Extra inputs are not permitted" in error_of(r)["message"]
    r = client.post(f"{typed_url}/invoke", json={"input": {"text": "hi"}, "config": {"callbacks": []}})
    assert r.status_code == 422
    assert "config.callbacks: Extra inputs are not permitted" in error_of(r)["message"]
    r = client.post(f"{typed_url}/invoke", json={"input": {"text": "hi"}, "config": {"tags": "a"}})
    assert r.status_code == 422
    assert "config.tags" in error_of(r)["message"]


def test_body_that_is_not_json_says_how_to_send_it(client: httpx.Client, typed_url: str) -> None:
    r = client.post(f"{typed_url}/invoke", content=b'{"input": {"text": "hi"}}', headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert "Content-Type: application/json" in error_of(r)["message"]
    r = client.post(f"{typed_url}/invoke", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "empty" in error_of(r)["message"]


def test_prompt_error_raised_by_the_chain_is_422(client: httpx.Client) -> None:
    # The first step takes anything, so the request is not validated against the prompt's
    # variables: the prompt itself refuses the input, and that is still the client's error.
    chain = runnable(lambda d: d) | travel_chain()
    with live_server(create_app(chain)) as url:
        r = client.post(f"{url}/invoke", json={"input": {"style": "x"}})
        assert r.status_code == 422
        error = error_of(r)
        assert error["type"] == "PromptError"
        assert "'city'" in error["message"]
        r = client.post(f"{url}/stream", json={"input": {"style": "x"}})
        assert r.status_code == 422
        assert error_of(r)["type"] == "PromptError"


def test_pydantic_validation_error_raised_by_the_chain_is_422(client: httpx.Client) -> None:
    from .serve_targets import Question

    def parse(data):  # untyped: the server passes the dict through
        return Question.model_validate(data).text

    with live_server(create_app(parse)) as url:
        r = client.post(f"{url}/invoke", json={"input": {"txt": "hi"}})
    assert r.status_code == 422
    error = error_of(r)
    assert error["type"] == "ValidationError"
    assert "text" in error["message"]


def test_chain_error_is_500_json_with_secrets_redacted(client: httpx.Client, misc_urls: dict[str, str]) -> None:
    r = client.post(f"{misc_urls['leaky']}/invoke", json={"input": "x"})
    assert r.status_code == 500
    error = error_of(r)
    assert error["type"] == "RuntimeError"
    assert "4fT9xQ2LmZ8vB1nC7kD3" not in r.text and "eyJhbGciOiJIUzI1NiJ9" not in r.text
    assert error["message"] == "upstream refused the call: invalid key sk-*** (sent Authorization: Bearer ***)"


# ----------------------------------------------------------------------------- body size
SMALL_LIMIT = 2_000


@pytest.fixture(scope="module")
def small_url() -> Iterator[str]:
    with live_server(create_app(lambda s: len(s), max_body_bytes=SMALL_LIMIT)) as url:
        yield url


def test_body_within_the_limit_is_served(client: httpx.Client, small_url: str) -> None:
    r = client.post(f"{small_url}/invoke", json={"input": "a" * 1_500})
    assert r.status_code == 200 and r.json() == {"output": 1_500}


@pytest.mark.parametrize("size", [SMALL_LIMIT + 50, 3_000_000])
def test_oversized_body_with_content_length_is_413(client: httpx.Client, small_url: str, size: int) -> None:
    content = json.dumps({"input": "a" * size}).encode()
    r = client.post(f"{small_url}/invoke", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413
    error = error_of(r)
    assert error["type"] == "request_too_large"
    assert f"limited to {SMALL_LIMIT} bytes; got {len(content)} bytes" in error["message"]
    assert r.headers["x-request-id"]


@pytest.mark.parametrize("size", [SMALL_LIMIT + 50, 3_000_000])
def test_oversized_body_without_content_length_is_413(client: httpx.Client, small_url: str, size: int) -> None:
    payload = json.dumps({"input": "a" * size}).encode()

    def chunks() -> Iterator[bytes]:  # a generator body: sent chunked, no Content-Length
        for i in range(0, len(payload), 1_000):
            yield payload[i : i + 1_000]

    request = client.build_request(
        "POST", f"{small_url}/invoke", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    r = client.send(request)
    assert r.status_code == 413
    assert error_of(r)["message"] == f"the request body is limited to {SMALL_LIMIT} bytes; got more than that"


def test_chunked_body_within_the_limit_is_served(client: httpx.Client, small_url: str) -> None:
    payload = json.dumps({"input": "abc" * 100}).encode()
    r = client.post(
        f"{small_url}/invoke",
        content=iter([payload[:10], payload[10:]]),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json() == {"output": 300}


# ----------------------------------------------------------------------------- config
def test_tags_metadata_run_name_and_session_reach_the_runnable(client: httpx.Client) -> None:
    seen: list[dict[str, Any]] = []

    def capture(text: str, config: dict[str, Any]) -> str:
        seen.append(config)
        return text

    with live_server(create_app(capture)) as url:
        body = {
            "input": "hi",
            "config": {"tags": ["a", "b"], "metadata": {"user": "u1", "request_id": "forged"}, "run_name": "greet"},
            "session_id": "s-42",
        }
        r = client.post(f"{url}/invoke", json=body)
        assert r.status_code == 200 and r.json() == {"output": "hi"}
        rid = r.headers["x-request-id"]
        assert seen[-1]["tags"] == ["a", "b"]
        assert seen[-1]["metadata"] == {"user": "u1", "request_id": rid}  # the server's id wins
        assert seen[-1]["configurable"] == {"session_id": "s-42"}

        r = client.post(f"{url}/batch", json={"inputs": ["x", "y"], "config": {"tags": ["t"]}})
        assert r.json() == {"outputs": ["x", "y"]}
        batch_id = r.headers["x-request-id"]
        assert [c["tags"] for c in seen[-2:]] == [["t"], ["t"]]
        assert [c["metadata"]["request_id"] for c in seen[-2:]] == [batch_id, batch_id]
        assert "configurable" not in seen[-1]

        with client.stream("POST", f"{url}/stream", json={"input": "s", "config": {"metadata": {"k": 1}}}) as resp:
            assert read_sse(resp) == [("data", "s"), ("end", {})]
            assert seen[-1]["metadata"] == {"k": 1, "request_id": resp.headers["x-request-id"]}


def test_outputs_are_made_json_safe(client: httpx.Client) -> None:
    import datetime as dt

    def everything(_: Any) -> dict[str, Any]:
        return {
            "message": HumanMessage("hi"),
            "bytes": b"\x00\x01maru",
            "when": dt.datetime(2024, 5, 1, 12, 30),
            "set": {3},
            "tuple": (1, 2),
            "nan": float("nan"),
            "int_key": {1: "one"},
        }

    with live_server(create_app(everything)) as url:
        r = client.post(f"{url}/invoke", json={"input": None})
    assert r.status_code == 200
    assert r.json()["output"] == {
        "message": {"role": "user", "content": "hi"},
        "bytes": "AAFtYXJ1",
        "when": "2024-05-01T12:30:00",
        "set": [3],
        "tuple": [1, 2],
        "nan": None,
        "int_key": {"1": "one"},
    }
