"""The route functions and the models builder, called directly: no app, no socket.

A route reads the runnable and the allowed kwargs from ``request.app.state``; a stub request with
those (and an ASGI scope for the request id) is all it needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from maru import runnable
from maru.core import coerce
from maru.serve.bodies import ServeModels, build_models
from maru.serve.routes import batch, health, invoke, stream, stream_events

from .conftest import parse_sse
from .serve_targets import leaky, picky, punctuate, two_then_fail


def stub_request(target: Any, allowed_kwargs: tuple[str, ...] = ()) -> Any:
    state = SimpleNamespace(runnable=coerce(target), allowed_kwargs=allowed_kwargs, expose_server_metadata=False)
    return SimpleNamespace(app=SimpleNamespace(state=state), scope={})


def body_of(response: Any) -> Any:
    return json.loads(response.body)


def streamed(route: Any, request: Any, body: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """The route's response and its server-sent events, read in the loop that made the stream."""

    async def call() -> tuple[Any, bytes]:
        response = await route(request, body)
        return response, b"".join([chunk async for chunk in response.body_iterator])

    response, raw = asyncio.run(call())
    return response, list(parse_sse(raw.decode().splitlines()))


# =============================================================================== build_models
def test_build_models_returns_a_frozen_slotted_record() -> None:
    models = build_models(coerce(picky))
    assert isinstance(models, ServeModels)
    assert models.input_type is int and models.output_type is int
    assert not hasattr(models, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        models.input_type = str


def test_build_models_validates_with_the_runnable_types() -> None:
    models = build_models(coerce(picky))
    assert models.invoke_request.model_validate({"input": 3}).input == 3
    with pytest.raises(ValidationError):
        models.invoke_request.model_validate({"input": "three"})
    with pytest.raises(ValidationError):
        models.invoke_request.model_validate({"input": 3, "extra": 1})
    assert models.batch_request.model_validate({"inputs": [1, 2]}).inputs == [1, 2]
    outputs = models.batch_response.model_validate({"outputs": [1, {"error": {"type": "E", "message": "m"}}]})
    assert outputs.outputs[0] == 1


def test_build_models_overrides_and_documents_allowed_kwargs() -> None:
    models = build_models(coerce(punctuate), input_type=list[int], allowed_kwargs=("mark",))
    assert models.invoke_request.model_validate({"input": [1, 2]}).input == [1, 2]
    kwargs_schema = models.invoke_request.model_json_schema()["properties"]["kwargs"]
    assert "`mark`" in kwargs_schema["description"]
    hidden = build_models(coerce(punctuate)).invoke_request.model_json_schema()["properties"]
    assert "kwargs" not in hidden


# =============================================================================== routes
def test_health_names_the_runnable() -> None:
    request = stub_request(picky)
    assert asyncio.run(health(request)) == {"status": "ok", "name": request.app.state.runnable.name}


def test_invoke_runs_the_runnable_with_the_request_config() -> None:
    seen: list[Any] = []

    @runnable
    def record(text: str, config: Any) -> str:
        seen.append(config)
        return text.upper()

    models = build_models(coerce(record))
    request = stub_request(record)
    body = models.invoke_request.model_validate(
        {"input": "hi", "config": {"tags": ["t"]}, "session_id": "s1"}
    )
    response = asyncio.run(invoke(request, body))
    assert response.status_code == 200 and body_of(response) == {"output": "HI"}
    config = seen[0]
    assert "t" in config["tags"]
    assert config["metadata"]["request_id"] == request.scope["state"]["request_id"]
    assert config["configurable"]["session_id"] == "s1"


def test_invoke_refuses_kwargs_the_server_does_not_allow() -> None:
    models = build_models(coerce(punctuate))
    body = models.invoke_request.model_validate({"input": "hi", "kwargs": {"mark": "?"}})
    response = asyncio.run(invoke(stub_request(punctuate), body))
    assert response.status_code == 422
    error = body_of(response)["error"]
    assert error["type"] == "validation_error" and "maru serve --kwarg NAME" in error["message"]

    allowed = asyncio.run(invoke(stub_request(punctuate, ("mark",)), body))
    assert body_of(allowed) == {"output": "hi?"}


def test_invoke_failure_is_a_redacted_500() -> None:
    models = build_models(coerce(leaky))
    body = models.invoke_request.model_validate({"input": "x"})
    response = asyncio.run(invoke(stub_request(leaky), body))
    assert response.status_code == 500
    error = body_of(response)["error"]
    assert error["type"] == "RuntimeError" and "sk-proj-4fT9" not in error["message"]


def test_batch_returns_failed_items_as_errors() -> None:
    models = build_models(coerce(picky))
    body = models.batch_request.model_validate({"inputs": [1, -2], "return_exceptions": True})
    response = asyncio.run(batch(stub_request(picky), body))
    outputs = body_of(response)["outputs"]
    assert outputs[0] == 10 and outputs[1]["error"]["type"] == "ValueError"


def test_stream_sends_chunks_then_an_error_event() -> None:
    target = runnable(lambda s: s) | two_then_fail
    models = build_models(coerce(target))
    body = models.invoke_request.model_validate({"input": "a"})
    response, events = streamed(stream, stub_request(target), body)
    assert response.status_code == 200 and response.media_type == "text/event-stream"
    assert events[:2] == [("data", "a-1"), ("data", "a-2")]
    assert events[2][0] == "error" and "abcd1234efgh5678" not in events[2][1]["error"]["message"]


def test_stream_failure_before_the_first_chunk_is_a_json_error() -> None:
    models = build_models(coerce(picky))
    body = models.invoke_request.model_validate({"input": -1})
    response = asyncio.run(stream(stub_request(picky), body))
    assert response.status_code == 500 and body_of(response)["error"]["type"] == "ValueError"


def test_stream_events_ends_with_end() -> None:
    models = build_models(coerce(picky))
    body = models.stream_events_request.model_validate({"input": 2, "include_kinds": ["chain"]})
    _, events = streamed(stream_events, stub_request(picky), body)
    assert [(kind, data["event"]) for kind, data in events[:-1]] == [
        ("data", "on_chain_start"),
        ("data", "on_chain_stream"),
        ("data", "on_chain_end"),
    ]
    assert events[-1] == ("end", {})
