"""Allowed call-time kwargs carry types: read from the served function's parameters, or given by
the server (``allowed_kwargs={"name": type}``). The OpenAPI document shows them and a value of the
wrong type is a 422 naming the keyword."""

from __future__ import annotations

from typing import Any

import httpx

from maru import runnable
from maru.serve import create_app

from .conftest import asgi_request


def repeat(text: str, times: int = 1, sep: str = " ", loud: bool = False) -> str:
    out = sep.join([text] * times)
    return out.upper() if loud else out


def call(app: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    return asgi_request(app, method, path, json=body)  # type: ignore[no-any-return]


def kwargs_schema(app: Any) -> dict[str, Any]:
    schemas = call(app, "GET", "/openapi.json").json()["components"]["schemas"]
    ref = next(s["$ref"] for s in schemas["InvokeRequest"]["properties"]["kwargs"]["anyOf"] if "$ref" in s)
    return schemas[ref.rsplit("/", 1)[-1]]


def test_kwarg_types_come_from_the_function_signature() -> None:
    app = create_app(runnable(repeat), allowed_kwargs=["times", "sep", "loud"])
    schema = kwargs_schema(app)
    props = schema["properties"]
    assert props["times"]["type"] == "integer" and props["sep"]["type"] == "string"
    assert props["loud"]["type"] == "boolean"
    assert schema["additionalProperties"] is False
    r = call(app, "POST", "/invoke", {"input": "hi", "kwargs": {"times": 2, "loud": True}})
    assert r.json() == {"output": "HI HI"}
    r = call(app, "POST", "/invoke", {"input": "hi", "kwargs": {"times": "many"}})
    assert r.status_code == 422 and "kwargs.times" in r.json()["error"]["message"]


def test_the_server_can_give_kwarg_types() -> None:
    app = create_app(runnable(lambda s, **kw: f"{s} {kw}"), allowed_kwargs={"temperature": float, "tag": str})
    props = kwargs_schema(app)["properties"]
    assert props["temperature"]["type"] == "number" and props["tag"]["type"] == "string"
    r = call(app, "POST", "/invoke", {"input": "x", "kwargs": {"temperature": "hot"}})
    assert r.status_code == 422
    r = call(app, "POST", "/invoke", {"input": "x", "kwargs": {"temperature": 0.5}})
    assert r.json() == {"output": "x {'temperature': 0.5}"}
    r = call(app, "POST", "/invoke", {"input": "x", "kwargs": {"other": 1}})
    assert r.status_code == 422 and "['other'] are not allowed" in r.json()["error"]["message"]
