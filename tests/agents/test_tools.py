"""Tools: schemas from typed functions, validation, errors and timeouts as messages for the model."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from maru.agents import Tool, ToolTimeout, tool
from maru.errors import ToolCallError
from maru.messages import ToolCall


@tool
def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """Current weather in a city.

    Args:
        city: The city name, e.g. Seoul.
        unit: Temperature unit.
    """
    return f"{city}: 21°{unit}"


def test_schema_from_signature_and_docstring():
    schema = weather.to_openai_tool()["function"]
    assert schema["name"] == "weather"
    assert schema["description"] == "Current weather in a city."
    params = schema["parameters"]
    assert params["required"] == ["city"]
    assert params["properties"]["city"]["description"] == "The city name, e.g. Seoul."
    assert params["properties"]["unit"]["enum"] == ["C", "F"]
    assert weather.kind == "tool"


def test_invoke_validates_and_calls():
    assert weather.invoke({"city": "Seoul"}) == "Seoul: 21°C"
    assert weather.invoke('{"city": "Busan", "unit": "F"}') == "Busan: 21°F"
    with pytest.raises(ToolCallError, match=r"unit: Input should be 'C' or 'F'"):
        weather.invoke({"city": "Seoul", "unit": "K"})
    with pytest.raises(ToolCallError, match="city: Field required"):
        weather.invoke({})
    with pytest.raises(ToolCallError, match="Extra inputs"):
        weather.invoke({"city": "Seoul", "country": "KR"})


def test_single_parameter_tool_takes_a_bare_value():
    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    assert shout.invoke("hi") == "HI"


def test_explicit_schema_and_names():
    class Args(BaseModel):
        query: str = Field(description="what to look up")
        k: int = 3

    def lookup(query: str, k: int) -> list[str]:
        return [query] * k

    t = Tool.from_function(lookup, name="kb_lookup", description="Look things up.", args_schema=Args)
    assert t.name == "kb_lookup"
    assert t.invoke({"query": "x", "k": 2}) == ["x", "x"]
    assert t.to_openai_tool()["function"]["parameters"]["properties"]["query"]["description"] == "what to look up"


def test_missing_description_is_refused():
    def nodoc(x: int) -> int:
        return x

    with pytest.raises(ToolCallError, match="no description"):
        Tool(nodoc)


def test_run_call_turns_failures_into_error_messages():
    @tool
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    ok = divide.run_call(ToolCall(name="divide", args={"a": 1, "b": 4}, id="c1"))
    assert ok.content == "0.25" and ok.status == "success" and ok.tool_call_id == "c1"
    bad = divide.run_call(ToolCall(name="divide", args={"a": 1}, id="c2"))
    assert bad.status == "error" and "b: Field required" in bad.content
    boom = divide.run_call(ToolCall(name="divide", args={"a": 1, "b": 0}, id="c3"))
    assert boom.status == "error" and "ZeroDivisionError" in boom.content


def test_timeouts_sync_and_async():
    @tool(timeout_s=0.1)
    def slow(x: int) -> int:
        """Sleep a while."""
        time.sleep(1)
        return x

    @tool(timeout_s=0.1)
    async def aslow(x: int) -> int:
        """Sleep a while, async."""
        await asyncio.sleep(1)
        return x

    with pytest.raises(ToolTimeout, match="within 0.1 s"):
        slow.invoke({"x": 1})
    msg = aslow.run_call(ToolCall(name="aslow", args={"x": 1}, id="t"))
    assert msg.status == "error" and "did not finish within 0.1 s" in msg.content
    assert asyncio.run(aslow.arun_call(ToolCall(name="aslow", args={"x": 1}, id="t"))).status == "error"


def test_async_tool_runs_from_sync_and_async():
    @tool
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        await asyncio.sleep(0)
        return a + b

    assert add.invoke({"a": 1, "b": 2}) == 3
    assert asyncio.run(add.ainvoke({"a": 2, "b": 2})) == 4
