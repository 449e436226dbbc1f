"""The tool-calling and ReAct agents, driven by the scripted test double."""

from __future__ import annotations

import asyncio
import threading

import pytest

from maru.agents import AgentResult, AgentStep, ReActAgent, ToolCallingAgent, parse_react, tool
from maru.agents.react import ReActParseError
from maru.messages import AIMessage, ToolCall, ToolMessage
from maru.models.scripted import ScriptedChatModel


@tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return {"Seoul": "sunny, 21°C", "Busan": "rain, 18°C"}[city]


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaboom: {reason}")


def calls(*pairs):
    return AIMessage("", tool_calls=[ToolCall(name=n, args=a, id=f"c{i}") for i, (n, a) in enumerate(pairs)])


def test_agent_runs_tools_and_returns_transcript():
    model = ScriptedChatModel([calls(("weather", {"city": "Seoul"})), "It is sunny in Seoul, 21°C."])
    result = ToolCallingAgent(model, [weather], system="You are a weather bot.").invoke("Weather in Seoul?")
    assert isinstance(result, AgentResult)
    assert result.output == "It is sunny in Seoul, 21°C." and result.stopped == "answer"
    assert [type(m).__name__ for m in result.messages] == [
        "SystemMessage", "HumanMessage", "AIMessage", "ToolMessage", "AIMessage",
    ]
    assert result.messages[3].content == "sunny, 21°C"
    assert model.calls[0].params["tools"][0]["function"]["name"] == "weather"
    second = model.calls[1].messages
    assert isinstance(second[-1], ToolMessage) and second[-1].tool_call_id == "c0"


def test_wrong_tool_bad_arguments_and_raising_tool_go_back_to_the_model():
    model = ScriptedChatModel([
        calls(("wether", {"city": "Seoul"}), ("weather", {"town": "Seoul"}), ("explode", {"reason": "test"})),
        "Sorry, I could not check the weather.",
    ])
    result = ToolCallingAgent(model, [weather, explode]).invoke("Weather?")
    tool_messages = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_messages] == ["error"] * 3
    assert "no tool named 'wether'" in tool_messages[0].content and "explode, weather" in tool_messages[0].content
    assert "city: Field required" in tool_messages[1].content
    assert "RuntimeError: kaboom: test" in tool_messages[2].content
    assert result.output.startswith("Sorry")
    assert len(model.calls[1].messages) == 5  # the model saw all three errors


def test_several_tool_calls_run_concurrently():
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def wait_a(x: int) -> int:
        """Waits for its sibling."""
        barrier.wait()
        return x

    @tool
    def wait_b(x: int) -> int:
        """Waits for its sibling."""
        barrier.wait()
        return x * 10

    model = ScriptedChatModel([calls(("wait_a", {"x": 1}), ("wait_b", {"x": 2})), "done"])
    result = ToolCallingAgent(model, [wait_a, wait_b]).invoke("go")  # serial execution would time out
    assert [m.content for m in result.messages if isinstance(m, ToolMessage)] == ["1", "20"]


def test_max_steps_stops_a_looping_model():
    model = ScriptedChatModel([calls(("weather", {"city": "Busan"}))], cycle=True)
    result = ToolCallingAgent(model, [weather], max_steps=3).invoke("loop")
    assert result.stopped == "max_steps" and len(model.calls) == 3
    # the partial answer: what the last tool said, and that the agent stopped — never ""
    assert result.output.startswith("weather returned:") and "stopped after 3 model turns" in result.output


def test_first_tool_choice_forces_a_lookup_on_the_first_turn_only():
    model = ScriptedChatModel([calls(("weather", {"city": "Busan"})), "Rainy."])
    result = ToolCallingAgent(model, [weather], first_tool_choice="required").invoke("Busan?")
    assert result.output == "Rainy."
    assert model.calls[0].params["tool_choice"] == "required"
    assert "tool_choice" not in model.calls[1].params


def test_stream_yields_each_step_then_the_result():
    model = ScriptedChatModel([calls(("weather", {"city": "Busan"})), "Rainy."])
    items = list(ToolCallingAgent(model, [weather]).stream("Busan?"))
    assert [(i.kind, i.step) for i in items[:-1]] == [("model", 1), ("tool", 1), ("model", 2)]
    assert isinstance(items[1], AgentStep) and items[1].call.name == "weather" and items[1].ok
    assert isinstance(items[-1], AgentResult) and items[-1].output == "Rainy."


def test_async_agent():
    model = ScriptedChatModel([calls(("weather", {"city": "Seoul"}), ("weather", {"city": "Busan"})), "Both checked."])
    result = asyncio.run(ToolCallingAgent(model, [weather]).ainvoke({"input": "Seoul and Busan?"}))
    assert [m.content for m in result.messages if isinstance(m, ToolMessage)] == ["sunny, 21°C", "rain, 18°C"]
    assert result.output == "Both checked."


# ----------------------------------------------------------------------------- ReAct
@pytest.mark.parametrize(
    ("text", "action", "arg"),
    [
        ("Thought: look it up\nAction: weather\nAction Input: {\"city\": \"Seoul\"}", "weather", {"city": "Seoul"}),
        ("**Action:** weather\n**Action Input:** Seoul", "weather", "Seoul"),
        ("action: weather\naction input: ```json\n{\"city\": \"Busan\"}\n```", "weather", {"city": "Busan"}),
        ("Thought: hmm\nAction: weather(Seoul)", "weather", "Seoul"),
        ("Action: `weather`\nAction Input: \"Seoul\"", "weather", "Seoul"),
        (
            "Action: weather\nAction Input: {\"city\": \"Seoul\"}\nObservation: sunny\nFinal Answer: sunny",
            "weather",
            {"city": "Seoul"},
        ),
    ],
)
def test_react_parser_recovers_from_format_slips(text, action, arg):
    step = parse_react(text)
    assert step.action == action and step.action_input == arg and step.final is None


def test_react_parser_final_answer_and_errors():
    assert parse_react("Thought: I know it\nFinal Answer: 42").final == "42"
    assert parse_react("final answer: 서울은 맑아요").final == "서울은 맑아요"
    with pytest.raises(ReActParseError, match="Could not find"):
        parse_react("I think it is sunny.")


def test_react_agent_loop_with_a_format_slip_and_a_wrong_tool():
    model = ScriptedChatModel([
        "I should check the weather.",  # no Action: → told how to format
        "Thought: use a tool\nAction: wether\nAction Input: {\"city\": \"Seoul\"}",
        "Thought: fix the name\nAction: weather\nAction Input: {\"city\": \"Seoul\"}",
        "Thought: done\nFinal Answer: Sunny, 21°C.",
    ])
    result = ReActAgent(model, [weather]).invoke("Weather in Seoul?")
    assert result.output == "Sunny, 21°C." and result.stopped == "answer"
    observations = [s.message.content for s in result.steps if s.kind == "tool"]
    assert observations[0].startswith("Format error")
    assert "no tool named 'wether'" in observations[1]
    assert observations[2] == "sunny, 21°C"
    last_prompt = model.calls[-1].messages
    assert "Observation: sunny, 21°C" in last_prompt[-2].content
    assert "- weather: Current weather in a city." in model.calls[0].messages[0].content
    assert model.calls[0].params.get("stop") == ["\nObservation:"]


def test_a_repeated_identical_call_is_not_run_again_and_the_model_is_told():
    ran = []

    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email (a side effect)."""
        ran.append(to)
        return "sent"

    same = ("send_email", {"to": "kim@example.com", "body": "hi"})
    reordered = ("send_email", {"body": "hi", "to": "kim@example.com"})
    model = ScriptedChatModel([calls(same), calls(reordered, same), "Sent once."])
    result = ToolCallingAgent(model, [send_email]).invoke("email kim")
    assert ran == ["kim@example.com"]
    assert result.output == "Sent once." and result.stopped == "answer"
    repeats = [m for m in result.messages if isinstance(m, ToolMessage) and m.status == "error"]
    assert len(repeats) == 2 and all("already called" in m.text and "turn 1" in m.text for m in repeats)


def test_the_loop_guard_holds_in_the_async_agent_too():
    ran = []

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        ran.append(q)
        return "42"

    model = ScriptedChatModel([calls(("lookup", {"q": "x"}), ("lookup", {"q": "x"})), calls(("lookup", {"q": "x"})), "42."])
    result = asyncio.run(ToolCallingAgent(model, [lookup]).ainvoke("?"))
    assert ran == ["x"] and result.output == "42."
