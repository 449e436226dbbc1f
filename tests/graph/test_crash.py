"""A process killed (SIGKILL) in the middle of a run: the next process resumes the thread from its
last checkpoint, and no node that finished before the kill runs again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, operator, os, signal, sys
    from pathlib import Path
    from typing import Annotated, TypedDict
    from maru.graph import START, END, SQLiteSaver, StateGraph, idempotency_key

    folder = Path(sys.argv[1])
    effects = folder / "effects.log"  # the side effects each node had, one line per run of a node

    class S(TypedDict, total=False):
        done: Annotated[list, operator.add]

    def step(name):
        def run(state):
            with effects.open("a") as f:
                f.write(f"{name} {idempotency_key('effect')}\\n")
            if name == "three" and not (folder / "killed").exists():
                (folder / "killed").touch()
                os.kill(os.getpid(), signal.SIGKILL)  # dies after its effect, before its checkpoint
            return {"done": [name]}
        return run

    graph = StateGraph(S)
    graph.add_sequence([(n, step(n)) for n in ("one", "two", "three", "four")])
    graph.add_edge(START, "one").add_edge("four", END)
    app = graph.compile(checkpointer=SQLiteSaver(folder / "threads.sqlite"))
    thread = {"configurable": {"thread_id": "job"}}
    out = app.invoke({"done": []} if sys.argv[2] == "start" else None, thread)
    print(json.dumps(out))
    """
)


def run_script(folder: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), mode], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_killed_run_resumes_from_its_last_checkpoint_without_rerunning_finished_nodes(tmp_path: Path) -> None:
    killed = run_script(tmp_path, "start")
    assert killed.returncode == -9, killed.stderr
    assert effects(tmp_path) == [("one", "job:1:one:effect"), ("two", "job:2:two:effect"), ("three", "job:3:three:effect")]

    resumed = run_script(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"done": ["one", "two", "three", "four"]}
    # "three" was killed before its checkpoint: it runs again (at most once more), with the same
    # idempotency key, so the outside system can tell; one and two never run again
    assert [name for name, _ in effects(tmp_path)] == ["one", "two", "three", "three", "four"]
    assert effects(tmp_path)[3] == ("three", "job:3:three:effect")


def effects(folder: Path) -> list[tuple[str, ...]]:
    return [tuple(line.split()) for line in (folder / "effects.log").read_text().splitlines()]
