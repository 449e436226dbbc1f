"""Graphs served with threads: one that asks a person to approve a tool call (``interrupt``), then
reports with a chat model. ``maru serve threads_targets:approval`` serves it from this folder."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from maru.core import RunConfig, Runnable
from maru.graph import (
    END,
    START,
    CheckpointSaver,
    CompiledGraph,
    StateGraph,
    add_messages,
    interrupt,
)
from maru.models import ScriptedChatModel


class Approval(TypedDict, total=False):
    request: str
    tool_calls: list[dict[str, Any]]
    results: Annotated[list[str], operator.add]
    messages: Annotated[list[Any], add_messages]


def plan(state: Approval) -> dict[str, Any]:
    return {"tool_calls": [{"id": "call-1", "name": "delete_file", "args": {"path": state["request"]}}]}


def review(state: Approval) -> dict[str, Any]:
    """Pause for the decision on the planned call: approve, edit its arguments, or reject it."""
    decision = interrupt({"type": "tool_approval", "tool_calls": state["tool_calls"]})
    call = state["tool_calls"][0]
    action = decision.get("action")
    if action == "approve":
        return {"results": [f"deleted {call['args']['path']}"]}
    if action == "edit":
        return {"results": [f"deleted {decision['args']['path']}"]}
    return {"results": [f"rejected: {decision.get('message', '')}"]}


def approval_graph(checkpointer: CheckpointSaver | None = None) -> CompiledGraph:
    """plan -> review (pauses) -> report (a chat model's words) -> END."""
    model = ScriptedChatModel(["All done here."], cycle=True)

    def report(state: Approval) -> dict[str, Any]:
        return {"messages": [model.invoke([("human", "; ".join(state["results"]))])]}

    graph = StateGraph(Approval)
    graph.add_node("plan", plan)
    graph.add_node("review", review)
    graph.add_node("report", report)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "review")
    graph.add_edge("review", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)


class AgentLike(Runnable[Any, Any]):
    """Something built on a graph that it keeps as ``.graph`` (as the agents do)."""

    def __init__(self, graph: CompiledGraph) -> None:
        self.graph = graph

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self.graph.invoke(input, config)


approval = approval_graph()  # no checkpointer: `maru serve` keeps its threads in maru's home
