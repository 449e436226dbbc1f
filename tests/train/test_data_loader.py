"""Any DataLoader resumes exactly: a plain shuffling ``torch.utils.data.DataLoader`` (with and
without workers) stopped at step 20 and resumed to 40 is bit-identical to an unbroken 40-step run;
under DDP it is given a DistributedSampler (or refused loudly)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402


def _start(out: Path, *args: str, nproc: int | None = None):  # type: ignore[no-untyped-def]
    # Hugging Face datasets: local files only, nothing downloads
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(out.parent / "hf_home")}
    return tr.run_script(out, *args, nproc=nproc, env=env, script="train_loader.py")


def _run(out: Path, *args: str, nproc: int | None = None) -> dict:  # type: ignore[type-arg]
    tr.check(_start(out, *args, nproc=nproc))
    return tr.summary(out)


def stop_and_resume(tmp_path: Path, *args: str, stop: int = 20, end: int = 40) -> tuple[dict, dict, Path, Path]:  # type: ignore[type-arg]
    """An unbroken run to ``end``; another stopped at ``stop`` and resumed (a new process) to ``end``."""
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    ckpt = str(tmp_path / "ckpt")
    unbroken = _run(whole, "--steps", str(end), *args)
    first = _run(broken, "--steps", str(stop), "--ckpt-dir", ckpt, *args)
    assert first["seen"] == unbroken["seen"][:stop]
    resumed = _run(broken, "--steps", str(end), "--ckpt-dir", ckpt, *args)
    assert resumed["resumed_from"].endswith(str(stop))
    return unbroken, resumed, whole, broken


def assert_bit_identical(tmp_path: Path, *args: str, stop: int = 20) -> dict:  # type: ignore[type-arg]
    unbroken, resumed, whole, broken = stop_and_resume(tmp_path, *args, stop=stop)
    assert resumed["seen"] == unbroken["seen"][stop:]  # the exact next batches
    assert resumed["losses"] == unbroken["losses"][stop:]  # bit-identical floats
    assert tr.identical(tr.weights(whole), tr.weights(broken))
    return resumed


@pytest.mark.parametrize("workers", [0, 2])
def test_shuffling_dataloader_resumes_mid_epoch_bit_identical(tmp_path: Path, workers: int) -> None:
    # 96 samples in batches of 8: step 20 is the 9th batch of the second epoch
    resumed = assert_bit_identical(tmp_path, "--data", "loader", "--workers", str(workers))
    assert not any("restarts" in w for w in resumed["warnings"])


PIPELINES = {
    "loader-persistent-workers": ("--data", "loader", "--workers", "2", "--persistent"),
    "sharded-workers": ("--data", "sharded", "--workers", "2"),
    "stateful-iterable": ("--data", "iterable"),
    "hf-dataset-workers": ("--data", "hf", "--workers", "2"),
    "hf-streaming": ("--data", "hf_stream", "--no-shuffle"),
}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_pipeline_resumes_mid_epoch_bit_identical(tmp_path: Path, name: str) -> None:
    assert_bit_identical(tmp_path, *PIPELINES[name])


def test_resume_at_an_epoch_boundary(tmp_path: Path) -> None:
    assert_bit_identical(tmp_path, "--data", "loader", stop=12)  # 12 batches per epoch


def test_iterable_without_state_warns_that_it_restarts(tmp_path: Path) -> None:
    run, ckpt = tmp_path / "run", str(tmp_path / "ckpt")
    _run(run, "--data", "iterable_plain", "--steps", "4", "--ckpt-dir", ckpt)
    resumed = _run(run, "--data", "iterable_plain", "--steps", "8", "--ckpt-dir", ckpt)
    assert any("restarts from its first batch" in w for w in resumed["warnings"])


def test_stateful_iterable_behind_workers_warns_at_start(tmp_path: Path) -> None:
    summary = _run(tmp_path / "run", "--data", "iterable", "--workers", "2", "--steps", "2")
    assert any("worker processes" in w for w in summary["warnings"])


def _epochs(seen: list[list[int]], per_epoch: int) -> list[set[int]]:
    return [set(sum(seen[i : i + per_epoch], [])) for i in range(0, len(seen), per_epoch)]


def test_ddp_gives_a_plain_dataloader_a_distributed_sampler_and_resumes(tmp_path: Path) -> None:
    whole, broken, ckpt = tmp_path / "whole", tmp_path / "broken", str(tmp_path / "ckpt")
    _run(whole, "--data", "loader", "--steps", "16", nproc=2)
    _run(broken, "--data", "loader", "--steps", "8", "--ckpt-dir", ckpt, nproc=2)
    _run(broken, "--data", "loader", "--steps", "16", "--ckpt-dir", ckpt, nproc=2)
    runs = [tr.summary(whole, rank)["seen"] for rank in (0, 1)]
    # 96 samples, 2 ranks, batches of 8: 6 steps an epoch, each rank its own half
    first, second = (_epochs(seen, 6) for seen in runs)
    assert not first[0] & second[0] and first[0] | second[0] == set(range(96))
    assert runs[0][:6] != runs[0][6:12]  # set_epoch: another order in the next epoch
    for rank in (0, 1):
        assert tr.summary(broken, rank)["seen"] == runs[rank][8:]
        assert tr.identical(tr.weights(whole, rank), tr.weights(broken, rank))
