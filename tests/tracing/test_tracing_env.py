"""MARU_TRACING=1 traces a whole program into the run store that `maru trace` reads."""

import json
import os
import subprocess
import sys

from maru.tracing import RunStore

PROGRAM = """
from maru import runnable
from maru.models import ScriptedChatModel
chain = runnable(lambda q: [("human", q)], name="to_messages") | ScriptedChatModel(replies=["fine"])
print(chain.invoke("how are you?").content)
"""


def test_env_var_traces_a_program_into_the_store(tmp_path):
    db = tmp_path / "traces.sqlite"
    env = {**os.environ, "MARU_TRACING": "1", "MARU_TRACE_DB": str(db)}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fine"
    store = RunStore(db, create=False)
    [root] = store.list_traces()
    runs = store.get_trace(root.trace_id)
    assert [(r.kind, r.name) for r in runs if r.parent_id] == [("chain", "to_messages"), ("llm", "ScriptedChatModel")]
    llm = next(r for r in runs if r.kind == "llm")
    assert llm.outputs["content"] == "fine" and llm.output_tokens == 1

    listing = subprocess.run(
        [sys.executable, "-m", "maru.cli", "trace", "ls", "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert root.trace_id in listing.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "maru.cli", "trace", "show", root.trace_id[:6], "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "ScriptedChatModel" in shown.stdout
    json.loads(listing.stdout)
