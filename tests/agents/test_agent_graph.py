"""The agents on maru.graph: checkpointed threads, approval before chosen tools, token streaming."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maru.agents import ApprovalError, ReActAgent, ToolCallingAgent, tool, tool_call_key
from maru.errors import ConfigurationError
from maru.graph import Command, CompiledGraph, InMemorySaver, SQLiteSaver
from maru.messages import AIMessage, AIMessageChunk, HumanMessage, ToolCall, ToolMessage
from maru.models.scripted import ScriptedChatModel

THREAD = {"configurable": {"thread_id": "t1"}}


def calls(*triples: tuple[str, dict[str, Any], str]) -> AIMessage:
    return AIMessage("", tool_calls=[ToolCall(name=n, args=a, id=i) for n, a, i in triples])


class Files:
    """Tools with side effects, and the record of what each did."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, Any, str | None]] = []

        @tool
        def delete_file(path: str) -> str:
            """Delete a file."""
            self.ran.append(("delete_file", path, tool_call_key()))
            return f"deleted {path}"

        @tool
        def list_files(folder: str) -> str:
            """List a folder."""
            self.ran.append(("list_files", folder, tool_call_key()))
            return "a.txt b.txt"

        self.tools = [delete_file, list_files]


def approving_agent(files: Files, replies: list[Any], **options: Any) -> ToolCallingAgent:
    model = ScriptedChatModel(replies)
    return ToolCallingAgent(model, files.tools, approve=["delete_file"], checkpointer=InMemorySaver(), **options)


# ----------------------------------------------------------------------------- checkpoints
def test_a_checkpointed_run_saves_every_step_and_continues_the_conversation(tmp_path: Any) -> None:
    files = Files()
    model = ScriptedChatModel([calls(("list_files", {"folder": "."}, "c0")), "Two files.", "Still two."])
    agent = ToolCallingAgent(model, files.tools, system="Be brief.", checkpointer=SQLiteSaver(tmp_path / "t.sqlite"))
    assert isinstance(agent.graph, CompiledGraph)
    first = agent.invoke("What is here?", THREAD)
    assert first.output == "Two files." and first.stopped == "answer"
    state = agent.graph.get_state(THREAD)
    assert state is not None and state.values["messages"] == first.messages[1:]  # the system prompt is not stored
    assert [s.metadata["source"] for s in agent.graph.get_state_history(THREAD)[::-1]] == ["input", "loop", "loop", "loop"]
    assert files.ran == [("list_files", ".", "t1:2:tools:c0")]

    second = agent.invoke("And now?", THREAD)  # the thread goes on: the model sees the first run
    assert second.output == "Still two." and [s.kind for s in second.steps] == ["model"]
    assert [m.text for m in model.calls[-1].messages][:2] == ["Be brief.", "What is here?"]
    assert len(model.calls[-1].messages) == 6  # system, the first run (4), the new question


def test_a_run_that_failed_goes_on_from_its_last_step_without_running_tools_again() -> None:
    files = Files()
    model = ScriptedChatModel([calls(("list_files", {"folder": "."}, "c0")), RuntimeError("provider down"), "Two files."])
    agent = ToolCallingAgent(model, files.tools, checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError, match="provider down"):
        agent.invoke("What is here?", THREAD)
    *new_steps, result = agent.stream(None, THREAD)  # the stream shows what this call did
    assert [s.kind for s in new_steps] == ["model"] and len(files.ran) == 1
    assert result.output == "Two files." and [s.kind for s in result.steps] == ["model", "tool", "model"]


def test_the_loop_guard_and_max_steps_hold_per_run_in_a_thread() -> None:
    files = Files()
    again = calls(("list_files", {"folder": "."}, "c0"))
    model = ScriptedChatModel([again, again, "ok", again, "ok again"])
    agent = ToolCallingAgent(model, files.tools, checkpointer=InMemorySaver(), max_steps=3)
    first = agent.invoke("list", THREAD)
    assert "already called" in first.messages[-2].text and len(files.ran) == 1
    second = agent.invoke("list once more", THREAD)  # a new run may ask again
    assert second.output == "ok again" and len(files.ran) == 2


def test_without_a_checkpointer_there_is_no_thread_and_no_key() -> None:
    files = Files()
    model = ScriptedChatModel([calls(("list_files", {"folder": "."}, "c0")), "Two."])
    assert ToolCallingAgent(model, files.tools).invoke("?").output == "Two."
    assert files.ran == [("list_files", ".", None)]


# ----------------------------------------------------------------------------- approval
def test_the_run_pauses_before_an_approved_tool_and_runs_it_once_approved() -> None:
    files = Files()
    agent = approving_agent(files, [calls(("delete_file", {"path": "a.txt"}, "c0")), "Deleted."])
    paused = agent.invoke("delete a.txt", THREAD)
    assert paused.stopped == "interrupted" and paused.output == "" and files.ran == []
    assert paused.interrupt == {
        "type": "tool_approval", "tool_calls": [{"id": "c0", "name": "delete_file", "args": {"path": "a.txt"}}]
    }
    assert [s.kind for s in paused.steps] == ["model"]
    done = agent.invoke(Command(resume={"action": "approve"}), THREAD)
    assert done.output == "Deleted." and files.ran == [("delete_file", "a.txt", "t1:2:tools:c0")]
    assert [(s.kind, s.step) for s in done.steps] == [("model", 1), ("tool", 1), ("model", 2)]  # the whole run


def test_edit_runs_the_call_with_new_arguments_and_the_transcript_says_so() -> None:
    files = Files()
    agent = approving_agent(files, [calls(("delete_file", {"path": "a.txt"}, "c0")), "Deleted."])
    agent.invoke("delete a.txt", THREAD)
    done = agent.invoke(Command(resume={"action": "edit", "args": {"path": "b.txt"}}), THREAD)
    assert files.ran == [("delete_file", "b.txt", "t1:2:tools:c0")]
    asked = [m for m in done.messages if isinstance(m, AIMessage) and m.tool_calls]
    assert [c.args for c in asked[0].tool_calls] == [{"path": "b.txt"}]
    assert done.steps[1].call is not None and done.steps[1].call.args == {"path": "b.txt"}


def test_reject_tells_the_model_and_runs_nothing() -> None:
    files = Files()
    model = ScriptedChatModel([calls(("delete_file", {"path": "a.txt"}, "c0")), "I will not delete it."])
    agent = ToolCallingAgent(model, files.tools, approve=["delete_file"], checkpointer=InMemorySaver())
    agent.invoke("delete a.txt", THREAD)
    done = agent.invoke(Command(resume={"action": "reject", "message": "keep a.txt"}), THREAD)
    assert files.ran == [] and done.output == "I will not delete it."
    told = model.calls[-1].messages[-1]
    assert isinstance(told, ToolMessage) and told.status == "error" and "keep a.txt" in told.text


def test_decisions_by_call_id_and_other_tools_of_the_turn_run_once_after_the_answer() -> None:
    files = Files()
    turn = calls(
        ("delete_file", {"path": "a.txt"}, "c0"), ("list_files", {"folder": "."}, "c1"),
        ("delete_file", {"path": "b.txt"}, "c2"),
    )
    agent = approving_agent(files, [turn, "Done."])
    paused = agent.invoke("clean up", THREAD)
    assert [c["id"] for c in paused.interrupt["tool_calls"]] == ["c0", "c2"] and files.ran == []  # type: ignore[index]
    agent.invoke(Command(resume={"c0": {"action": "approve"}, "c2": {"action": "reject", "message": "no"}}), THREAD)
    assert sorted(name_arg[:2] for name_arg in files.ran) == [("delete_file", "a.txt"), ("list_files", ".")]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("yes", "one decision for all calls"),
        ({"action": "maybe"}, "a decision is"),
        ({"action": "edit"}, "'args'"),
        ({"action": "edit", "args": "b.txt"}, "'args'"),
        ({"action": "reject", "message": 3}, "'message'"),
        ({"action": "approve", "args": {}}, "unexpected keys ['args']"),
        ({"c9": {"action": "approve"}}, "no decision for ['c0']"),
    ],
)
def test_a_wrong_answer_is_one_clear_error_and_the_run_can_still_be_answered(answer: Any, says: str) -> None:
    files = Files()
    agent = approving_agent(files, [calls(("delete_file", {"path": "a.txt"}, "c0")), "Deleted."])
    agent.invoke("delete a.txt", THREAD)
    with pytest.raises(ApprovalError, match=says.replace("[", r"\[").replace("(", r"\(")):
        agent.invoke(Command(resume=answer), THREAD)
    assert files.ran == []
    assert agent.invoke(Command(resume={"action": "approve"}), THREAD).output == "Deleted."


def test_a_wrong_answer_given_to_the_graph_itself_asks_again_saying_why() -> None:
    files = Files()
    agent = approving_agent(files, [calls(("delete_file", {"path": "a.txt"}, "c0")), "Deleted."])
    agent.invoke("delete a.txt", THREAD)
    out = agent.graph.invoke(Command(resume="sure"), THREAD)
    [asked] = out["__interrupt__"]
    assert asked.value["type"] == "tool_approval" and "one decision for all calls" in asked.value["error"]
    assert agent.invoke(Command(resume={"action": "approve"}), THREAD).output == "Deleted." and len(files.ran) == 1


def test_approval_needs_a_checkpointer_and_known_tool_names() -> None:
    files = Files()
    with pytest.raises(ConfigurationError, match="checkpointer=InMemorySaver"):
        ToolCallingAgent(ScriptedChatModel(["x"]), files.tools, approve=["delete_file"])
    with pytest.raises(ConfigurationError, match="not tools of this agent"):
        ToolCallingAgent(ScriptedChatModel(["x"]), files.tools, approve=["rm"], checkpointer=InMemorySaver())


def test_async_agent_pauses_and_resumes() -> None:
    files = Files()
    agent = approving_agent(files, [calls(("delete_file", {"path": "a.txt"}, "c0")), "Deleted."])

    async def run() -> tuple[Any, Any]:
        paused = await agent.ainvoke("delete a.txt", THREAD)
        return paused, await agent.ainvoke(Command(resume={"action": "approve"}), THREAD)

    paused, done = asyncio.run(run())
    assert paused.stopped == "interrupted" and done.output == "Deleted." and len(files.ran) == 1


def test_react_agent_asks_before_a_chosen_tool_too() -> None:
    files = Files()
    model = ScriptedChatModel([
        'Thought: remove it\nAction: delete_file\nAction Input: {"path": "a.txt"}',
        "Thought: done\nFinal Answer: a.txt is gone.",
    ])
    agent = ReActAgent(model, files.tools, approve=["delete_file"], checkpointer=InMemorySaver())
    paused = agent.invoke("delete a.txt", THREAD)
    assert paused.interrupt is not None and paused.interrupt["tool_calls"][0]["name"] == "delete_file"
    done = agent.invoke(Command(resume={"action": "approve"}), THREAD)
    assert done.output == "a.txt is gone." and files.ran == [("delete_file", "a.txt", "t1:2:tools:react-1")]
    assert "Observation: deleted a.txt" in model.calls[-1].messages[-2].text


# ----------------------------------------------------------------------------- tokens
def test_the_graph_streams_the_models_tokens_as_they_come() -> None:
    files = Files()
    model = ScriptedChatModel([calls(("list_files", {"folder": "."}, "c0")), "There are two files here."])
    agent = ToolCallingAgent(model, files.tools)
    seen = list(agent.graph.stream({"messages": [HumanMessage("What is here?")]}, stream_mode="messages"))
    answer = [chunk for chunk, meta in seen if meta["langgraph_node"] == "model" and isinstance(chunk, AIMessageChunk)]
    assert len(answer) >= 5 and "".join(c.text for c in answer) == "There are two files here."
    assert any(isinstance(chunk, AIMessageChunk) and chunk.tool_call_chunks for chunk in answer) or any(
        isinstance(chunk, AIMessageChunk) and chunk.tool_calls for chunk, _ in seen
    )
    assert files.ran == [("list_files", ".", None)]  # the streamed tool call was gathered and ran


def test_a_plain_run_invokes_the_model_without_streaming() -> None:
    streamed: list[int] = []

    class Counting(ScriptedChatModel):
        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            streamed.append(1)
            return super()._stream(*args, **kwargs)

    assert ToolCallingAgent(Counting(["hi"]), []).invoke("?").output == "hi" and streamed == []


def test_a_reply_whose_id_the_thread_already_has_is_added_not_swapped_in() -> None:
    files = Files()
    same = calls(("list_files", {"folder": "."}, "c0"))
    same.id = "provider-1"
    final = AIMessage("Two files.", id="provider-1")  # a provider (or a cache) reusing an id
    agent = ToolCallingAgent(ScriptedChatModel([same, final]), files.tools, checkpointer=InMemorySaver())
    result = agent.invoke("What is here?", THREAD)
    assert [type(m).__name__ for m in result.messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert result.output == "Two files."


def test_a_thread_id_used_again_after_delete_does_not_get_the_old_tool_results() -> None:
    files = Files()
    saver = InMemorySaver()
    first = ToolCallingAgent(ScriptedChatModel([calls(("list_files", {"folder": "a"}, "c0")), "A."]), files.tools, checkpointer=saver)
    first.invoke("list a", THREAD)
    saver.delete_thread("t1")  # the thread goes; its journal ("t1#tools") is left behind
    again = ToolCallingAgent(ScriptedChatModel([calls(("list_files", {"folder": "b"}, "c0")), "B."]), files.tools, checkpointer=saver)
    again.invoke("list b", THREAD)
    assert [folder for _, folder, _ in files.ran] == ["a", "b"]
