"""`maru chat --tools … --approve …`: the agent asks on the terminal before a chosen tool runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maru import cli
from maru.agents import tool
from maru.cli import chat as cli_chat
from maru.messages import AIMessage, ToolCall, ToolMessage
from maru.models.scripted import ScriptedChatModel

DELETED: list[str] = []


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    DELETED.append(path)
    return f"deleted {path}"


@tool
def list_files(folder: str) -> str:
    """List a folder."""
    return "a.txt b.txt"


TOOLS = [delete_file, list_files]


def run_chat(monkeypatch: pytest.MonkeyPatch, model: ScriptedChatModel, typed: str, *options: str) -> Any:
    DELETED.clear()
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, url: model)
    args = ["chat", "--tools", f"{__name__}:TOOLS", "--approve", "delete_file", *options]
    return CliRunner().invoke(cli.app, args, input=typed)


def asks_to_delete(path: str = "a.txt") -> AIMessage:
    return AIMessage("", tool_calls=[ToolCall("delete_file", {"path": path}, "c0")])


def test_approved_the_tool_runs_and_the_answer_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ScriptedChatModel([asks_to_delete(), "a.txt is deleted."])
    result = run_chat(monkeypatch, model, "delete a.txt\ny\n/exit\n")
    assert result.exit_code == 0, result.output
    assert DELETED == ["a.txt"]
    out = result.stdout
    assert 'approve delete_file({"path": "a.txt"})?' in out
    assert out.index("approve ›") < out.index("← delete_file: deleted a.txt") < out.index("ai › a.txt is deleted.")


def test_edited_the_tool_runs_with_the_arguments_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ScriptedChatModel([asks_to_delete(), "b.txt is deleted."])
    typed = 'delete a.txt\nmaybe\ne\n{not json\ne\n{"path": "b.txt"}\n/exit\n'
    result = run_chat(monkeypatch, model, typed)
    assert result.exit_code == 0, result.output
    assert DELETED == ["b.txt"]
    assert "answer y (run it)" in result.stdout and "not JSON" in result.stdout


def test_rejected_the_tool_does_not_run_and_the_model_hears_why(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ScriptedChatModel([asks_to_delete(), "All right, I kept it."])
    result = run_chat(monkeypatch, model, "delete a.txt\nr\nkeep a.txt, it is the report\n/exit\n")
    assert result.exit_code == 0, result.output
    assert DELETED == [] and "ai › All right, I kept it." in result.stdout
    told = model.calls[-1].messages[-1]
    assert isinstance(told, ToolMessage) and told.status == "error" and "it is the report" in told.text


def test_a_tool_not_named_runs_without_asking_and_a_session_resumes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARU_HOME", str(tmp_path))
    lists = AIMessage("", tool_calls=[ToolCall("list_files", {"folder": "."}, "c0")])
    first = run_chat(monkeypatch, ScriptedChatModel([lists, "Two files."]), "what is here?\n/exit\n", "--session", "s1")
    assert first.exit_code == 0, first.output
    assert "approve ›" not in first.stdout and "← list_files: a.txt b.txt" in first.stdout
    again = run_chat(monkeypatch, ScriptedChatModel(["Still two."]), "and now?\n/exit\n", "--session", "s1")
    assert "session s1: resumed 4 earlier messages" in again.stdout and "ai › Still two." in again.stdout


def test_approve_without_tools_and_a_target_that_is_not_tools_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, url: ScriptedChatModel(["x"]))
    alone = CliRunner().invoke(cli.app, ["chat", "--approve", "delete_file"])
    assert alone.exit_code == 2 and "--tools module:object" in alone.output
    wrong = CliRunner().invoke(cli.app, ["chat", "--tools", f"{__name__}:DELETED", "--approve", "x"])
    assert wrong.exit_code == 2 and "not tools" in wrong.output
    unknown = CliRunner().invoke(cli.app, ["chat", "--tools", f"{__name__}:TOOLS", "--approve", "rm"])
    assert unknown.exit_code == 2 and "not tools of this agent" in unknown.output
