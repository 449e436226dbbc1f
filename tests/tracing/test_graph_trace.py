"""A ``maru.graph`` run is one trace: its start, each superstep, the nodes, their models and tools,
interrupts and resumes, with the thread and step in the metadata and every saved checkpoint listed,
so the viewer can show the thread's checkpoints without the saver's database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

import pytest
from fastapi.testclient import TestClient

from maru.graph import END, START, StateGraph
from maru.models import ScriptedChatModel
from maru.tracing import tracing
from maru.tracing.graphs import graph_summary
from maru.tracing.store import RunStore
from maru.tracing.viewer import create_viewer_app

from .graph_traces import THREAD, Kept, agent_traces, tree


def by_name(runs: list, name: str) -> list:
    return sorted((r for r in runs if r.name == name), key=lambda r: r.start_time)


def test_a_paused_then_resumed_agent_is_two_trees_of_steps_nodes_tools_and_the_interrupt() -> None:
    paused, resumed = agent_traces()
    assert tree(paused) == [
        (0, "trip-agent"),
        (1, "input"),
        (1, "step 1"), (2, "agent"), (3, "ScriptedChatModel"), (2, "lambda"),
        (1, "step 2"), (2, "approve"), (2, "interrupt"),
    ]
    assert tree(resumed) == [
        (0, "trip-agent"),
        (1, "resume"),
        (1, "step 2"), (2, "approve"),
        (1, "step 5"), (2, "tools"), (3, "get_weather"),
        (1, "step 6"), (2, "agent"), (3, "ScriptedChatModel"), (2, "lambda"),
    ]
    # What each added run says: the thread, the step, what it is.
    (step1,) = by_name(paused, "step 1")
    assert step1.metadata == {"maru_graph": "step", "langgraph_step": 1, "thread_id": THREAD}
    assert step1.inputs == {"nodes": ["agent"]} and step1.outputs["next"] == ["approve"]
    (agent,) = by_name(paused, "agent")
    assert agent.metadata == {"langgraph_step": 1, "thread_id": THREAD} and agent.parent_id == step1.id
    (question,) = by_name(paused, "interrupt")
    assert question.inputs == {"tool": "get_weather", "args": {"city": "Seoul"}}
    assert question.metadata["langgraph_node"] == "approve" and question.error is None
    (resume,) = by_name(resumed, "resume")
    assert resume.inputs == {"resume": "yes"} and resume.outputs["next"] == ["approve"]
    (tool_run,) = by_name(resumed, "get_weather")
    assert tool_run.kind == "tool" and tool_run.inputs == {"city": "Seoul"}


def test_the_checkpoints_of_the_thread_are_in_the_trace() -> None:
    paused, resumed = agent_traces()
    first = graph_summary(paused)
    assert first is not None and first["threads"] == [THREAD]
    assert [(c["step"], c["source"], c["writers"], c["next"]) for c in first["checkpoints"]] == [
        (0, "input", ["input"], ["agent"]),
        (1, "loop", ["agent"], ["approve"]),
        (2, "pending", [], ["approve"]),  # paused: the interrupt is saved, the step is not over
    ]
    assert [c["run_name"] for c in first["checkpoints"]] == ["input", "step 1", "step 2"]
    assert first["interrupts"][0]["node"] == "approve"
    second = graph_summary(resumed)
    assert second is not None
    assert [(c["step"], c["source"], c["writers"]) for c in second["checkpoints"]] == [
        (3, "pending", []),  # the answer
        (4, "loop", ["approve"]),
        (5, "loop", ["tools"]),
        (6, "loop", ["agent"]),
    ]
    assert all(c["created_at"] > 0 for c in second["checkpoints"])
    assert graph_summary([r for r in paused if not r.metadata.get("maru_graph")]) is None  # not a graph trace


def test_the_viewer_api_sends_a_graph_traces_checkpoints(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "traces.sqlite")
    paused, _ = agent_traces(store)
    client = TestClient(create_viewer_app(store))
    data = client.get(f"/api/traces/{paused[0].trace_id}").json()
    assert [c["step"] for c in data["graph"]["checkpoints"]] == [0, 1, 2]
    assert data["graph"]["threads"] == [THREAD]
    listed = {t["trace_id"]: t for t in client.get("/api/traces").json()["traces"]}
    assert (listed[paused[0].trace_id]["error_count"], listed[paused[0].trace_id]["paused_count"]) == (0, 1)


class Count(TypedDict):
    x: int


def counting_graph() -> Any:
    graph = StateGraph(Count)
    graph.add_node("a", lambda s: {"x": s["x"] + 1})
    graph.add_node("b", lambda s: {"x": s["x"] * 2})
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", END)
    return graph.compile()


def test_without_a_checkpointer_async_and_streamed_runs_have_the_same_steps() -> None:
    app = counting_graph()
    kept = Kept()
    with tracing([kept]) as tracer:
        assert app.invoke({"x": 1}) == {"x": 4}
        assert asyncio.run(app.ainvoke({"x": 1})) == {"x": 4}
        assert list(app.stream({"x": 1}, stream_mode="updates")) == [{"a": {"x": 2}}, {"b": {"x": 4}}]

        async def astreamed() -> list[Any]:
            return [c async for c in app.astream({"x": 1}, stream_mode="updates")]

        assert asyncio.run(astreamed()) == [{"a": {"x": 2}}, {"b": {"x": 4}}]
        tracer.flush()
    expected = [(0, "StateGraph"), (1, "step 1"), (2, "a"), (1, "step 2"), (2, "b")]
    assert [tree(runs) for runs in kept.traces] == [expected] * 4
    step = by_name(kept.traces[0], "step 1")[0]
    assert step.metadata == {"maru_graph": "step", "langgraph_step": 1}  # no thread without a checkpointer
    assert step.outputs == {"updates": {"a": {"x": 2}}, "next": ["b"], "checkpoints": []}


def test_messages_stream_still_names_the_node_under_a_tracer() -> None:
    model = ScriptedChatModel(["hello there"])

    class Chat(TypedDict):
        reply: str

    graph = StateGraph(Chat)
    graph.add_node("talk", lambda s: {"reply": "".join(c.text for c in model.stream("hi"))})
    graph.add_edge(START, "talk")
    graph.add_edge("talk", END)
    app = graph.compile()
    with tracing([Kept()]):
        pieces = list(app.stream({"reply": ""}, stream_mode="messages"))
    assert pieces and {meta["langgraph_node"] for _, meta in pieces} == {"talk"}
    assert "".join(chunk.text for chunk, _ in pieces) == "hello there"


def test_trace_show_lists_the_checkpoints_and_calls_a_pause_a_pause(tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from maru import cli

    monkeypatch.setenv("COLUMNS", "200")
    store = RunStore(tmp_path / "traces.sqlite")
    paused, _ = agent_traces(store)
    result = CliRunner().invoke(cli.app, ["trace", "show", paused[0].trace_id, "--db", str(store.path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"checkpoints · thread {THREAD}" in out
    assert "⏸ paused" in out
    assert "failed" not in out and "where it failed" not in out  # interrupt() is a pause, not a failure
    rows = [line.split() for line in out.splitlines() if line.split()[:2] in (["0", "input"], ["1", "loop"], ["2", "pending"])]
    assert [r[:3] for r in rows] == [["0", "input", "input"], ["1", "loop", "agent"], ["2", "pending", "—"]]


def test_a_thread_continued_after_a_failure_starts_with_a_continue_run() -> None:
    from maru.graph import InMemorySaver

    attempts: list[int] = []

    def flaky(state: Count) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the disk was full")
        return {"x": state["x"] * 10}

    graph = StateGraph(Count)
    graph.add_node("a", lambda s: {"x": s["x"] + 1})
    graph.add_node("flaky", flaky)
    graph.add_edge(START, "a")
    graph.add_edge("a", "flaky")
    graph.add_edge("flaky", END)
    app = graph.compile(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t-retry"}}
    kept = Kept()
    with tracing([kept]) as tracer:
        with pytest.raises(RuntimeError):
            app.invoke({"x": 1}, thread)
        assert app.invoke(None, thread) == {"x": 20}
        tracer.flush()
    failed, continued = kept.traces
    assert tree(failed)[-2:] == [(1, "step 2"), (2, "flaky")]
    assert by_name(failed, "step 2")[0].error == "RuntimeError: the disk was full"
    assert tree(continued) == [(0, "StateGraph"), (1, "continue"), (1, "step 2"), (2, "flaky")]
    (start,) = by_name(continued, "continue")
    assert start.inputs is None and start.outputs == {"next": ["flaky"], "checkpoints": []}
    summary = graph_summary(continued)
    assert summary is not None and [(c["step"], c["writers"]) for c in summary["checkpoints"]] == [(2, ["flaky"])]
