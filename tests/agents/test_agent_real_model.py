"""The bundled local model drives a checkpointed agent: it pauses for approval, runs the tool once
approved, and its tokens stream from the agent's graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maru.agents import ToolCallingAgent, tool
from maru.graph import Command, SQLiteSaver
from maru.messages import AIMessageChunk, HumanMessage

THREAD = {"configurable": {"thread_id": "real"}}


@pytest.mark.real_model
def test_the_local_model_asks_for_approval_and_the_tool_runs_once_approved(local_model: Any, tmp_path: Path) -> None:
    deleted: list[str] = []

    @tool
    def delete_file(path: str) -> str:
        """Delete the file at the given path."""
        deleted.append(path)
        return f"deleted {path}"

    model = local_model(max_tokens=64, n_ctx=2048)
    agent = ToolCallingAgent(
        model, [delete_file], first_tool_choice="delete_file", approve=["delete_file"],
        checkpointer=SQLiteSaver(tmp_path / "threads.sqlite"), max_steps=2,
    )
    paused = agent.invoke("Delete the file notes.txt, please.", THREAD)
    assert paused.stopped == "interrupted" and deleted == []
    assert paused.interrupt is not None and paused.interrupt["type"] == "tool_approval"
    [call] = paused.interrupt["tool_calls"]
    assert call["name"] == "delete_file" and isinstance(call["args"].get("path"), str)

    done = agent.invoke(Command(resume={"action": "approve"}), THREAD)
    assert deleted == [call["args"]["path"]] and done.stopped in ("answer", "max_steps")
    assert [s.kind for s in done.steps][:2] == ["model", "tool"] and done.steps[1].message.text.startswith("deleted")


@pytest.mark.real_model
def test_the_local_models_tokens_stream_from_the_agents_graph(local_model: Any) -> None:
    agent = ToolCallingAgent(local_model(max_tokens=24, n_ctx=1024), [])
    chunks = [c for c, meta in agent.graph.stream({"messages": [HumanMessage("Say hello.")]}, stream_mode="messages")
              if meta["langgraph_node"] == "model"]
    assert len(chunks) >= 3 and all(isinstance(c, AIMessageChunk) for c in chunks)
