"""Constrained-decoding plans: which JSON a local model is held to, and how its reply is read."""

from __future__ import annotations

import json

import pytest

from maru.errors import ToolCallError
from maru.models.constrained import plan_reply
from maru.models.tools_schema import normalize_tool_choice, to_openai_tools


def weather(city: str) -> str:
    """The weather in a city."""
    return city


def clock(zone: str) -> str:
    """The time in a time zone."""
    return zone


TOOLS = to_openai_tools([weather, clock])


def test_plain_request_is_free_text():
    plan = plan_reply({"temperature": 0})
    assert plan.free_text and not plan.tools
    assert plan.read("hello") == ("hello", [])


def test_named_tool_choice_admits_only_that_tool():
    plan = plan_reply({"tools": TOOLS, "tool_choice": normalize_tool_choice("clock", TOOLS)})
    assert plan.schema["properties"]["name"] == {"const": "clock"}
    assert "weather" not in plan.note
    content, calls = plan.read('{"name": "clock", "arguments": {"zone": "UTC"}}')
    assert content == "" and calls[0].name == "clock" and calls[0].args == {"zone": "UTC"}
    assert calls[0].id.startswith("call_")


def test_required_offers_every_tool_and_no_answer():
    plan = plan_reply({"tools": TOOLS, "tool_choice": "required"})
    options = plan.schema["anyOf"]
    assert [o["properties"]["name"]["const"] for o in options] == ["weather", "clock"]
    assert '"answer"' not in plan.note


def test_auto_may_answer_instead():
    plan = plan_reply({"tools": TOOLS})
    assert any("answer" in o["properties"] for o in plan.schema["anyOf"])
    assert plan.read(json.dumps({"answer": "Sunny."})) == ("Sunny.", [])


def test_tool_choice_none_is_free_text():
    assert plan_reply({"tools": TOOLS, "tool_choice": "none"}).free_text


def test_json_schema_format_becomes_the_grammar():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    plan = plan_reply({"response_format": {"type": "json_schema", "json_schema": {"name": "X", "schema": schema}}})
    assert plan.schema == schema and not plan.tools
    assert plan.read('{"n": 1}') == ('{"n": 1}', [])


def test_json_object_with_and_without_schema():
    assert plan_reply({"response_format": {"type": "json_object"}}).schema == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert plan_reply({"response_format": {"type": "json_object", "schema": schema}}).schema == schema


def test_unreadable_tool_reply_says_what_was_wrong():
    plan = plan_reply({"tools": TOOLS, "tool_choice": "required"})
    with pytest.raises(ToolCallError, match="not JSON"):
        plan.read('{"name": "clo')
    with pytest.raises(ToolCallError, match="neither a tool call nor an answer"):
        plan.read('{"other": 1}')
