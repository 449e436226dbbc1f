"""The sbatch script's requeue rule, run by bash with stand-ins for srun, scontrol, squeue and
scancel: a preempted step (exit 143, or SIGTERM through the trap) is requeued while restarts
last; a step that failed with an error is not (torchrun already restarted it in place, and a
deterministic error fails every run alike). The real cluster runs in test_slurm_cluster.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from maru.launch import parse_spec
from maru.launch.slurm import render_sbatch

STUBS = {
    "srun": 'echo "srun $*" >> "$CALLS"; exit "${SRUN_EXIT:-0}"',
    "scontrol": 'echo "scontrol $*" >> "$CALLS"\n'
                'case "$1" in show) [ "$2" = hostnames ] && echo node1 || echo "JobId=7 '
                'JobState=RUNNING";; esac',
    "squeue": "exit 0",
    "scancel": 'echo "scancel $*" >> "$CALLS"',
}


def run_script(tmp_path: Path, srun_exit: int, restart_count: int = 0) -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        stub = bin_dir / name
        stub.write_text(f"#!/bin/bash\n{body}\n")
        stub.chmod(0o755)
    spec = parse_spec({"name": "job", "entrypoint": {"script": "t.py"}, "max_restarts": 2})
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(spec, tmp_path / "logs" / "%j.log", python="python"))
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CALLS=str(calls),
               SRUN_EXIT=str(srun_exit), SLURM_JOB_ID="7", SLURM_JOB_NODELIST="node1",
               SLURM_JOB_NUM_NODES="1", SLURM_RESTART_COUNT=str(restart_count))
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          timeout=30)
    return done.returncode, done.stdout, calls.read_text()


@pytest.mark.parametrize("code", [1, 124, 137])
def test_a_failed_step_is_not_requeued(tmp_path: Path, code: int) -> None:
    rc, out, calls = run_script(tmp_path, code)
    assert rc == code, out
    assert "scontrol requeue" not in calls
    assert f"failed with exit code {code}: not requeueing" in out


def test_a_preempted_step_is_requeued_while_restarts_last(tmp_path: Path) -> None:
    rc, out, calls = run_script(tmp_path, 143)
    assert rc == 0 and "scontrol requeue 7" in calls, out
    assert "preempted: requeueing (restart 1 of 2)" in out
    rc, out, calls = run_script(tmp_path, 143, restart_count=2)
    assert rc == 143 and "scontrol requeue" not in calls, out
    assert "no restarts left" in out


def test_each_run_gets_its_own_marker_folder(tmp_path: Path) -> None:
    rc, out, calls = run_script(tmp_path, 0)
    assert rc == 0
    srun = next(line for line in calls.splitlines() if line.startswith("srun "))
    assert "-m maru.launch.node" in srun and "-m maru.launch.entry t.py" in srun
    script = (tmp_path / "job.sbatch").read_text()
    assert f'export MARU_JOB_DIR={tmp_path / "logs"}/"$SLURM_JOB_ID.run$restarts"' in script
    assert f"export MARU_HANG_DUMP_DIR={tmp_path / 'logs' / 'hangs'}" in script
    assert "export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in script
