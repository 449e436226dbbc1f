"""A real ``maru.graph`` agent, traced: a scripted model asks for a tool, a person approves it
(``interrupt`` then ``Command(resume=...)``), the tool runs, the model answers. Two traces (the
run that pauses, the run that resumes) on one thread, for the tracing and viewer tests."""

from __future__ import annotations

import time
from typing import Annotated, Any, TypedDict

from maru.agents.tools import tool
from maru.graph import END, START, Command, InMemorySaver, StateGraph, add_messages, interrupt
from maru.messages import AIMessage, SystemMessage, ToolCall, ToolMessage
from maru.models import ScriptedChatModel
from maru.tracing import tracing
from maru.tracing.run import Run

THREAD = "trip-42"


class Agent(TypedDict):
    messages: Annotated[list, add_messages]


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    time.sleep(0.03)  # a little time, so the timeline has something to show
    return f"{city}: sunny, 21°C"


def slowly(reply: Any) -> Any:
    """A scripted reply that takes 20 ms, as a (very fast) model would."""

    def answer(messages: Any) -> Any:
        time.sleep(0.02)
        return reply

    return answer


def build_agent() -> Any:
    model = ScriptedChatModel([
        slowly(AIMessage("", tool_calls=[ToolCall("get_weather", {"city": "Seoul"}, id="call_1")])),
        slowly("Sunny and 21°C in Seoul: a good day for the palace."),
    ])

    def agent(state: Agent) -> dict[str, Any]:
        return {"messages": [model.invoke([SystemMessage("You plan day trips."), *state["messages"]])]}

    def approve(state: Agent) -> dict[str, Any] | None:
        call = state["messages"][-1].tool_calls[0]
        answer = interrupt({"tool": call.name, "args": call.args})
        return None if answer == "yes" else {"messages": [ToolMessage("rejected", tool_call_id=call.id)]}

    def tools(state: Agent) -> dict[str, Any]:
        call = state["messages"][-1].tool_calls[0]
        return {"messages": [ToolMessage(get_weather.invoke(call.args), tool_call_id=call.id, name=call.name)]}

    graph = StateGraph(Agent)
    graph.add_node("agent", agent)
    graph.add_node("approve", approve)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", lambda s: "approve" if s["messages"][-1].tool_calls else END)
    graph.add_edge("approve", "tools")
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver(), name="trip-agent")


class Kept:
    """A sink that keeps the runs of each trace (a write may hold several traces)."""

    def __init__(self) -> None:
        self.by_trace: dict[str, list[Run]] = {}

    @property
    def traces(self) -> list[list[Run]]:
        return list(self.by_trace.values())

    def write(self, runs: list[Run]) -> None:
        for run in runs:
            self.by_trace.setdefault(run.trace_id, []).append(run)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def agent_traces(*sinks: Any) -> list[list[Run]]:
    """Run the agent to its approval, resume it, and return the two traces (also given to ``sinks``)."""
    kept = Kept()
    app = build_agent()
    config = {"configurable": {"thread_id": THREAD}}
    with tracing([kept, *sinks]) as tracer:
        paused = app.invoke({"messages": [("user", "Is today good for a walk in Seoul?")]}, config)
        assert paused["__interrupt__"][0].value == {"tool": "get_weather", "args": {"city": "Seoul"}}
        done = app.invoke(Command(resume="yes"), config)
        assert done["messages"][-1].content.startswith("Sunny")
        tracer.flush()
    assert len(kept.traces) == 2
    return kept.traces


def tree(runs: list[Run]) -> list[tuple[int, str]]:
    """``(depth, name)`` of every run, children in start order under their parent."""
    children: dict[str | None, list[Run]] = {}
    for run in runs:
        children.setdefault(run.parent_id, []).append(run)
    out: list[tuple[int, str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for run in sorted(children.get(parent, []), key=lambda r: r.start_time):
            out.append((depth, run.name))
            walk(run.id, depth + 1)

    walk(None, 0)
    return out
