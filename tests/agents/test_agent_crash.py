"""An agent run SIGKILLed mid-way resumes from its SQLite checkpoint with no repeated side effect:
killed after a tool returned, the tool does not run again; killed during a tool, it runs at most
once more, with the same idempotency key."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from maru.agents import ToolCallingAgent, tool, tool_call_key
    from maru.graph import SQLiteSaver
    from maru.messages import AIMessage, ToolCall, ToolMessage
    from maru.models.scripted import ScriptedChatModel

    folder, window, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    effects = folder / "effects.log"  # one line per payment made: amount and idempotency key

    def die_once():
        if not (folder / "killed").exists():
            (folder / "killed").touch()
            os.kill(os.getpid(), signal.SIGKILL)

    class Saver(SQLiteSaver):
        def put(self, thread_id, checkpoint):
            super().put(thread_id, checkpoint)
            if window == "after" and thread_id.endswith("#tools"):
                die_once()  # the tool returned and its result is stored; the step's checkpoint is not

    @tool
    def pay(amount: int) -> str:
        \"\"\"Pay an amount (a side effect).\"\"\"
        with effects.open("a") as f:
            f.write(f"{amount} {tool_call_key()}\\n")
        if window == "during":
            die_once()  # the payment went out; the tool has not returned
        return "paid"

    def reply(messages):
        if any(isinstance(m, ToolMessage) for m in messages):
            return "Paid 5."
        return AIMessage("", tool_calls=[ToolCall("pay", {"amount": 5}, "call-1")])

    agent = ToolCallingAgent(ScriptedChatModel([reply], cycle=True), [pay], checkpointer=Saver(folder / "threads.sqlite"))
    thread = {"configurable": {"thread_id": "order-7"}}
    result = agent.invoke("Pay 5." if mode == "start" else None, thread)
    print(json.dumps({"output": result.output, "tools": [m.text for m in result.messages if m.type == "tool"]}))
    """
)


def run_agent(folder: Path, window: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), window, mode],
        capture_output=True, text=True, timeout=60, check=False,
    )


def payments(folder: Path) -> list[str]:
    return (folder / "effects.log").read_text().splitlines()


@pytest.mark.parametrize(("window", "after_resume"), [("after", 1), ("during", 2)])
def test_a_killed_agent_resumes_without_repeating_a_finished_tool(tmp_path: Path, window: str, after_resume: int) -> None:
    killed = run_agent(tmp_path, window, "start")
    assert killed.returncode == -9, killed.stderr
    assert payments(tmp_path) == ["5 order-7:2:tools:call-1"]

    resumed = run_agent(tmp_path, window, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"output": "Paid 5.", "tools": ["paid"]}
    # after: the recorded result is used, the tool does not run again; during: it runs once more,
    # with the same key, for the payment system to see it is the same payment
    assert payments(tmp_path) == ["5 order-7:2:tools:call-1"] * after_resume
