"""Run and trace ids: a short prefix picks one trace out, within a run and across processes."""

from __future__ import annotations

import re
import subprocess
import sys

from maru import runnable
from maru.core import events
from maru.tracing import tracing

from .traces import RunsSink


def _trace_ids(count: int) -> list[str]:
    sink = RunsSink()
    step = runnable(lambda x: x, name="echo")
    with tracing([sink]):
        for i in range(count):
            step.invoke(i)
    return [run.trace_id for run in sink.runs]


def test_ids_are_sixteen_hex_characters() -> None:
    ids = _trace_ids(3)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids


def test_traces_of_one_run_differ_from_their_first_characters() -> None:
    ids = _trace_ids(200)
    assert len({i[:4] for i in ids}) >= 195  # 200 traces: 4 characters tell (almost) all apart
    first, second = ids[0], ids[1]
    assert sum(a != b for a, b in zip(first, second, strict=True)) >= 8  # not the same id but one character


def test_traces_of_two_processes_do_not_share_prefixes() -> None:
    code = (
        "from maru.core import events; print(' '.join(events.run_id_str(n) for n in range(1, 51)))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(2)]
    a, b = (set(r.stdout.split()) for r in runs)
    assert len(a) == len(b) == 50
    assert not {i[:6] for i in a} & {i[:6] for i in b}


def test_event_ids_and_stored_ids_agree() -> None:
    sink = RunsSink()
    seen = []
    with tracing([sink]), events.listen(seen.append):
        (runnable(lambda x: x, name="a") | runnable(lambda x: x, name="b")).invoke(1)
    ends = {e.name: e.run_id for e in seen if e.phase == "end"}
    stored = {r.name: r.id for r in sink.runs}
    assert ends == stored
