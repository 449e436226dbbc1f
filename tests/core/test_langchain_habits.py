"""Code written the LangChain way keeps working: call-site keywords of ``astream_events`` are taken,
not passed down to the steps, and wrappers around a model keep ``bind_tools`` and
``with_structured_output``."""

import asyncio

import pytest
from pydantic import BaseModel

from maru import runnable
from maru.agents import ToolCallingAgent, tool
from maru.core.wrappers import Binding, Fallbacks, Retry
from maru.messages import AIMessage, ToolCall
from maru.models import ScriptedChatModel


def add1(x):
    return x + 1


def collect(step, x, **options):
    async def main():
        return [e async for e in step.astream_events(x, **options)]

    return asyncio.run(main())


# ----------------------------------------------------------------------------- astream_events keywords
def test_astream_events_takes_version_and_does_not_pass_it_to_a_function_step():
    events = collect(runnable(add1, name="add1"), 1, version="v2")
    assert events[-1].data["output"] == 2


def test_astream_events_version_never_reaches_the_model_request():
    model = ScriptedChatModel(["hi"])
    events = collect(model, "hello", version="v1")
    assert events[-1].event == "on_chat_model_end"
    assert "version" not in model.calls[-1].params


def test_astream_events_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="v2"):
        collect(runnable(add1), 1, version="v3")


def test_astream_events_include_and_exclude_filters_as_langchain_does():
    tagged = runnable(add1, name="tagged").with_config(tags=["noisy"])
    chain = runnable(add1, name="one") | tagged | str | ScriptedChatModel(["x"], cycle=True)
    by_type = collect(chain, 1, version="v2", include_types=["chat_model"])
    assert {e.kind for e in by_type} == {"chat_model"}
    no_one = collect(chain, 1, version="v2", exclude_names=["one"])
    assert "one" not in {e.name for e in no_one} and "tagged" in {e.name for e in no_one}
    no_noise = collect(chain, 1, version="v2", exclude_tags=["noisy"])
    assert "tagged" not in {e.name for e in no_noise}
    names_minus_kind = collect(chain, 1, include_names=["one", "ScriptedChatModel"], exclude_types=["chat_model"])
    assert {e.name for e in names_minus_kind} == {"one"}


# ----------------------------------------------------------------------------- wrappers keep bind_tools
@tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def _calls_weather():
    return AIMessage("", tool_calls=[ToolCall("weather", {"city": "Busan"}, "c1")])


def test_with_retry_model_binds_tools_and_keeps_retrying(monkeypatch):
    monkeypatch.setattr("maru.core.wrappers.time.sleep", lambda s: None)
    model = ScriptedChatModel([ConnectionError("blip"), AIMessage("done")])
    bound = model.with_retry(retry_on=ConnectionError).bind_tools([weather])
    assert isinstance(bound, Retry)
    assert bound.invoke("hi").text == "done"
    assert model.calls[-1].params["tools"][0]["function"]["name"] == "weather"


def test_with_fallbacks_model_binds_tools_on_every_model():
    primary = ScriptedChatModel([ConnectionError("down")])
    backup = ScriptedChatModel([_calls_weather(), AIMessage("sunny")])
    model = primary.with_fallbacks([backup])
    bound = model.bind_tools([weather], tool_choice="weather")
    assert isinstance(bound, Fallbacks)
    assert bound.invoke("hi").tool_calls[0].name == "weather"
    for m in (primary, backup):
        assert m.calls[0].params["tools"][0]["function"]["name"] == "weather"
        assert m.calls[0].params["tool_choice"]["function"]["name"] == "weather"


def test_agent_runs_on_a_model_with_fallbacks_and_retry():
    primary = ScriptedChatModel([ConnectionError("down")] * 3)
    backup = ScriptedChatModel([_calls_weather(), AIMessage("It is sunny in Busan.")])
    model = primary.with_retry(retry_on=ConnectionError, initial_delay=0, jitter=False).with_fallbacks([backup])
    agent = ToolCallingAgent(model, [weather])
    result = agent.invoke("Weather in Busan?")
    assert result.output == "It is sunny in Busan."
    assert [s.kind for s in result.steps] == ["model", "tool", "model"]


def test_binding_keeps_its_arguments_when_tools_are_bound():
    model = ScriptedChatModel(["ok"])
    bound = model.bind(temperature=0).with_config(run_name="m").bind_tools([weather])
    assert isinstance(bound, Binding) and bound.name == "m"
    bound.invoke("hi")
    params = model.calls[-1].params
    assert params["temperature"] == 0 and params["tools"][0]["function"]["name"] == "weather"


class City(BaseModel):
    name: str


def test_with_fallbacks_model_gives_structured_output():
    primary = ScriptedChatModel([ConnectionError("down")])
    backup = ScriptedChatModel(['{"name": "Busan"}'])
    extractor = primary.with_fallbacks([backup]).with_structured_output(City, method="json_schema")
    assert extractor.invoke("Which city?") == City(name="Busan")


def test_a_wrapper_around_a_non_model_says_it_cannot_bind_tools():
    step = runnable(add1).with_retry()
    assert not hasattr(step, "bind_tools")
    with pytest.raises(AttributeError, match="bind_tools"):
        step.bind_tools([weather])


def test_events_read_like_langchain_dicts():
    events = collect(runnable(add1, name="add1"), 1, version="v2")
    end = events[-1]
    assert end["event"] == "on_chain_end" and end["name"] == "add1" and end["data"]["output"] == 2
    assert end.get("tags") == [] and end.get("missing") is None
    with pytest.raises(KeyError):
        end["missing"]
