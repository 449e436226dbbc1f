"""Restarts under plain torchrun (no ``maru launch``), gloo on CPU.

torchrun's agent keeps one TCP store for every attempt of a job and hands it to the workers
(``TORCHELASTIC_USE_AGENT_STORE=True``); a restarted group that reads the previous attempt's keys
connects to addresses of dead workers (gloo ``connectFullMesh`` errors, or hangs in
``init_process_group``). :func:`maru.train.dist.init_process_group` gives each attempt its own key
space; the first test shows the failure it prevents deterministically, the second kills a rank
under plain ``torchrun --max-restarts 3`` and expects every trial to recover and finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from maru._process import free_port

SCRIPTS = Path(__file__).parent / "scripts"
WORKER = SCRIPTS / "agent_store_worker.py"
TRAIN = SCRIPTS / "ft_train.py"
TRIALS = int(os.environ.get("MARU_TORCHRUN_TRIALS", "3"))
"""SIGKILL trials per test run; the issue's bar is 10 of 10 (``MARU_TORCHRUN_TRIALS=10``)."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + 90 * TRIALS)]


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without any enclosing launcher's variables (and without the opt-out
    flag, so the tests see torchrun's default: the shared store)."""
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
            "MASTER_PORT", "TORCHELASTIC_", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "MARU_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _attempt(port: int, restart: int, delays: tuple[float, float]) -> list[subprocess.Popen[str]]:
    procs = []
    for rank, delay in enumerate(delays):
        env = _clean_env(
            RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
            GROUP_RANK="0", GROUP_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
            TORCHELASTIC_USE_AGENT_STORE="True", TORCHELASTIC_RESTART_COUNT=str(restart),
            TORCHELASTIC_RUN_ID="stale",
        )
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), str(delay)], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    return procs


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    results = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results.append((proc.returncode, out))
    return results


def test_a_restarted_group_does_not_read_the_last_attempts_addresses() -> None:
    """Attempt 0 fills the shared store; in attempt 1 rank 1 comes late. Read without a per-attempt
    key space, rank 0 would take rank 1's address from attempt 0 (a dead process) and fail."""
    from torch.distributed import TCPStore

    port = free_port()
    store = TCPStore("127.0.0.1", port, is_master=True, multi_tenant=True,
                     wait_for_workers=False, timeout=timedelta(seconds=30))
    first = _finish(_attempt(port, 0, (0.0, 0.0)))
    assert [code for code, _ in first] == [0, 0], first
    second = _finish(_attempt(port, 1, (0.0, 4.0)))
    assert [code for code, _ in second] == [0, 0], second
    assert all("sum=3" in out for _, out in second)
    del store


def _torchrun_trial(root: Path, trial: int) -> dict[str, object]:
    out = root / f"trial{trial}"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--max-restarts", "3", "--master-port", str(free_port()),
        str(TRAIN), "--out", str(out),
    ]
    env = _clean_env(MARU_CHECKPOINT_DIR=str(out / "ckpt"), MARU_TEST_KILL_AT="8")
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, text=True, capture_output=True, timeout=80)
        code, log = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, log = -1, f"timed out after 80 s\n{exc.stdout or ''}{exc.stderr or ''}"
    finished = (out / "summary0.json").exists() and (out / "summary1.json").exists()
    steps = json.loads((out / "summary0.json").read_text())["step"] if finished else None
    return {"trial": trial, "code": code, "killed": (out / "killed.json").exists(),
            "steps": steps, "seconds": round(time.monotonic() - started, 1), "log": log[-3000:]}


def test_sigkill_of_one_rank_under_plain_torchrun_recovers(tmp_path: Path) -> None:
    results = [_torchrun_trial(tmp_path, k) for k in range(TRIALS)]
    good = [r for r in results if r["code"] == 0 and r["killed"] and r["steps"] == 16]
    print(json.dumps({"sigkill_trials": TRIALS, "recovered": len(good),
                      "seconds": [r["seconds"] for r in results]}))
    bad = [r for r in results if r not in good]
    assert not bad, "\n\n".join(f"trial {r['trial']}: exit {r['code']}\n{r['log']}" for r in bad)


def test_across_nodes_the_trainer_warns_and_leaves_the_store_to_the_flag() -> None:
    """Several agents' restart counts can differ, so no shared key space is safe; the Trainer
    says which flag torchrun needs instead of guessing."""
    from maru.train.dist import attempt_store

    env = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "1",
           "TORCHELASTIC_MAX_RESTARTS": "3", "GROUP_WORLD_SIZE": "2", "RANK": "0"}
    with pytest.warns(RuntimeWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        assert attempt_store(env) is None
    assert attempt_store({**env, "TORCHELASTIC_USE_AGENT_STORE": "False"}) is None  # fresh store


def test_the_flag_is_read_by_torchrun_not_by_its_workers(tmp_path: Path) -> None:
    """Why the flag belongs in torchrun's environment: the agent decides whether its store is
    shared before any worker runs and hands the decision down; a worker can only follow it."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nprint('agent store:', os.environ['TORCHELASTIC_USE_AGENT_STORE'])\n")
    seen = []
    for flag in ("", "1"):
        env = _clean_env(**({"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": flag} if flag else {}))
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
             "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", str(probe)],
            env=env, text=True, capture_output=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.strip())
    assert seen == ["agent store: True", "agent store: False"]
