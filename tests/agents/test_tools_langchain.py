"""A tool made with langchain-core (``@tool``, ``StructuredTool``) is a maru tool: agents take it,
the model sees its schema, and its arguments are validated by its own schema."""

from __future__ import annotations

import asyncio

import pytest

from maru.agents import ReActAgent, Tool, ToolCallingAgent, as_tool
from maru.messages import AIMessage, ToolCall
from maru.models.scripted import ScriptedChatModel

lc_tools = pytest.importorskip("langchain_core.tools")


@lc_tools.tool
def population(city: str, year: int = 2020) -> str:
    """The population of a city in a given year."""
    return f"{city} had 3.4 million people in {year}"


async def _alookup(term: str) -> str:
    return f"{term}: a port city"


alookup = lc_tools.StructuredTool.from_function(coroutine=_alookup, name="lookup", description="Look a term up.")


def test_a_langchain_tool_becomes_a_maru_tool_with_its_schema():
    converted = as_tool(population)
    assert isinstance(converted, Tool)
    assert converted.name == "population" and converted.description.startswith("The population")
    schema = converted.to_openai_tool()["function"]["parameters"]
    assert set(schema["properties"]) == {"city", "year"} and schema["required"] == ["city"]
    assert converted.invoke({"city": "Busan"}) == "Busan had 3.4 million people in 2020"
    bad = converted.run_call(ToolCall("population", {"year": "soon"}, "c0"))
    assert bad.status == "error" and "city" in bad.content


def test_tool_calling_agent_runs_a_langchain_tool():
    model = ScriptedChatModel([
        AIMessage("", tool_calls=[ToolCall("population", {"city": "Busan", "year": 2021}, "c1")]),
        "About 3.4 million.",
    ])
    result = ToolCallingAgent(model, [population]).invoke("How many people live in Busan?")
    assert result.output == "About 3.4 million."
    assert result.messages[-2].content == "Busan had 3.4 million people in 2021"
    assert model.calls[0].params["tools"][0]["function"]["name"] == "population"


def test_an_async_only_langchain_tool_runs_sync_and_async():
    converted = as_tool(alookup)
    assert converted.invoke({"term": "Busan"}) == "Busan: a port city"
    assert asyncio.run(converted.ainvoke({"term": "Incheon"})) == "Incheon: a port city"


def test_react_agent_runs_a_langchain_tool():
    model = ScriptedChatModel([
        'Thought: look it up\nAction: lookup\nAction Input: {"term": "Busan"}',
        "Final Answer: a port city",
    ])
    result = ReActAgent(model, [alookup]).invoke("What is Busan?")
    assert result.output == "a port city"
    assert "Observation: Busan: a port city" in model.calls[1].messages[2].content


def test_a_model_binds_a_langchain_tool_directly():
    model = ScriptedChatModel(["ok"])
    model.bind_tools([population], tool_choice="population").invoke("hi")
    sent = model.calls[0].params["tools"][0]["function"]
    assert sent["name"] == "population" and sent["description"].startswith("The population")
    assert set(sent["parameters"]["properties"]) == {"city", "year"}
