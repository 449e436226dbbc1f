"""Exact resume: a run killed mid-way and restarted with the same command ends bit-identical to
an unbroken run, and continues with the exact next batch (and RNG: the model has dropout)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402

ARGS = ("--steps", "14", "--ckpt-every", "3", "--dropout", "0.2", "--val")


def _run(out: Path, *, nproc: int | None, kill_at: int = 0, extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    env = {"MARU_TEST_KILL_AT": str(kill_at)} if kill_at else None
    return tr.run_script(out, *ARGS, "--ckpt-dir", str(out / "ckpt"), *extra, nproc=nproc, env=env)


def test_single_process_resumes_mid_epoch_with_the_next_sample(tmp_path: Path) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    tr.check(_run(whole, nproc=None))
    killed = _run(broken, nproc=None, kill_at=9)  # after step 8; the last checkpoint is step 6
    assert killed.returncode != 0 and (broken / "killed.marker").exists()
    tr.check(_run(broken, nproc=None))
    resumed = tr.summary(broken)
    assert resumed["resumed_from"].endswith("6")
    seen = tr.summary(whole)["seen"]
    assert resumed["seen"] == seen[6:]  # exactly the samples the unbroken run saw from step 7
    assert tr.identical(tr.weights(whole), tr.weights(broken))
    assert resumed["val_metrics"] == tr.summary(whole)["val_metrics"]


@pytest.mark.slow
def test_ddp_run_killed_and_restarted_is_bit_identical(tmp_path: Path) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    tr.check(_run(whole, nproc=2))
    killed = _run(broken, nproc=2, kill_at=8)  # rank 0 SIGKILLs itself in step 8
    assert killed.returncode != 0
    tr.check(_run(broken, nproc=2))
    for rank in (0, 1):
        assert tr.identical(tr.weights(whole, rank), tr.weights(broken, rank))
        assert tr.summary(broken, rank)["seen"] == tr.summary(whole, rank)["seen"][6:]


@pytest.mark.slow
def test_ddp_sigterm_checkpoints_exits_143_and_resumes(tmp_path: Path) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    tr.check(_run(whole, nproc=2))
    # rank 0 alone gets SIGTERM in step 3; ranks agree at the next logging step (4) and stop there
    stopped = _run(broken, nproc=2, extra=("--sigterm-at", "3"))
    assert stopped.returncode != 0
    for rank in (0, 1):
        info = json.loads((broken / f"exit{rank}.json").read_text())
        assert info == {"code": 143, "step": 4}
    assert (broken / "ckpt" / "step_000000004").is_dir()
    tr.check(_run(broken, nproc=2))
    assert tr.summary(broken)["resumed_from"].endswith("4")
    assert tr.identical(tr.weights(whole), tr.weights(broken))
