"""A node's exit code means the same under every backend (the table in maru.launch.worker): real
torchrun runs under ``python -m maru.launch.node`` — a preempted worker makes the node exit 143,
not torchrun's 1; an error exits 1; SIGTERM to the node (a pod's kubelet) exits 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maru._process import free_port
from maru.launch.node import node_exit_code
from maru.launch.worker import FAILED, KILLED, PREEMPTED, SUCCEEDED

WORKER = Path(__file__).parent / "scripts" / "exit_worker.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_exit_code_table() -> None:
    assert node_exit_code(0, signalled=True, preempted_ranks=2) == SUCCEEDED
    assert node_exit_code(1, signalled=False, preempted_ranks=1) == PREEMPTED
    assert node_exit_code(1, signalled=True, preempted_ranks=0) == PREEMPTED
    assert node_exit_code(1, signalled=False, preempted_ranks=0) == FAILED
    assert node_exit_code(-9, signalled=False, preempted_ranks=0) == KILLED


def start_node(how: str, tmp_path: Path) -> subprocess.Popen[str]:
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_", "TORCHELASTIC_", "MARU_", "GROUP_",
            "SLURM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(MARU_TEST_EXIT=how, MARU_JOB_DIR=str(tmp_path / "job"), OMP_NUM_THREADS="1",
               MARU_TEST_READY=str(tmp_path / "ready"))
    command = [sys.executable, "-m", "maru.launch.node", "--nproc-per-node", "1",
               "--max-restarts", "0", "--master-port", str(free_port()),
               "--shutdown-timeout", "20", "-m", "maru.launch.entry", str(WORKER)]
    return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


@pytest.mark.parametrize(("how", "code"), [("preempt", PREEMPTED), ("error", FAILED),
                                           ("", SUCCEEDED)])
def test_a_node_exits_with_what_its_workers_meant(tmp_path: Path, how: str, code: int) -> None:
    node = start_node(how, tmp_path)
    out, _ = node.communicate(timeout=90)
    assert node.returncode == code, out


def test_sigterm_to_the_node_exits_143(tmp_path: Path) -> None:
    node = start_node("sleep", tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():  # torchrun up, worker sleeping
        assert node.poll() is None and time.monotonic() < deadline, "the worker never started"
        time.sleep(0.1)
    node.send_signal(signal.SIGTERM)
    out, _ = node.communicate(timeout=60)
    assert node.returncode == PREEMPTED, out
