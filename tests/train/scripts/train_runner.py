"""Start the train test scripts (under torchrun or plain python) and read what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent
REPO = SCRIPTS.parents[2]


def run_script(
    out: Path,
    *args: str,
    nproc: int | None = 2,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    script: str = "train_mlp.py",
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (torchrun with ``nproc`` workers, or plain python when ``nproc`` is None)."""
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc
        else [sys.executable]
    )
    # faulthandler: a worker that aborts (SIGABRT, at exit too) prints its Python stacks into stderr,
    # which check() shows.
    full_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"), PYTHONFAULTHANDLER="1")
    full_env.pop("MARU_TEST_KILL_AT", None)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(name, None)
    full_env.update(env or {})
    cmd = [*launcher, str(SCRIPTS / script), "--out", str(out), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=str(REPO)
    )


def summary(out: Path, rank: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / f"summary{rank}.json").read_text())
    return data


def weights(out: Path, rank: int = 0) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = torch.load(out / f"rank{rank}.pt")
    return state


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def rank0_weights_of_variants(
    tmp_path: Path, script: str, variants: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """Run ``script`` on two ranks once per variant (name -> extra arguments); check that the
    ranks end with identical weights and return rank 0's weights of each variant."""
    runs = {}
    for name, extra in variants.items():
        out = tmp_path / name
        check(run_script(out, *extra, script=script))
        assert identical(weights(out, 0), weights(out, 1)), f"{name}: ranks diverged"
        runs[name] = weights(out, 0)
    return runs
