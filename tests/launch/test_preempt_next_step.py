"""SIGTERM reaching one rank of a distributed run stops every rank at the next step (not at the
next ``log_every`` boundary): the preemption window is a step, whatever the logging interval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maru._process import free_port

SCRIPT = Path(__file__).parent / "scripts" / "preempt_train.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_sigterm_on_one_rank_stops_all_ranks_at_the_next_step(tmp_path: Path) -> None:
    port = free_port()
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_", "TORCHELASTIC_", "MARU_", "GROUP_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    procs = []
    for rank in (0, 1):
        env = dict(base, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1", MARU_TEST_TERM_AT="5", MARU_TEST_TERM_RANK="1")
        procs.append(subprocess.Popen([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = [proc.communicate(timeout=150)[0] for proc in procs]
    stopped = [json.loads((tmp_path / f"stopped{r}.json").read_text()) for r in (0, 1)]
    assert all(s["preempted"] for s in stopped), (stopped, outputs)
    assert stopped[0]["step"] == stopped[1]["step"], stopped
    # the signal arrived in step 6 (after 5 were done); the vote sent after step 6 is read after 7
    assert stopped[0]["step"] <= 8, stopped
