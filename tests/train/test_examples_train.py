"""The training examples run end to end with tiny settings and learn what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "train"


def _env() -> dict[str, str]:
    # one intra-op thread: on a shared 2-core machine OpenMP spinning makes bigger counts slower
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_example(name: str, *args: str, torchrun: int = 0) -> str:
    if torchrun:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={torchrun}", str(EXAMPLES / name), *args,
        ]
    else:
        command = [sys.executable, str(EXAMPLES / name), *args]
    proc = subprocess.run(
        command, capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_linear_regression_learns_w_2_b_1_and_its_run_plots(tmp_path: Path) -> None:
    out = run_example(
        "linear_regression.py", "--steps", "200", "--run-dir", str(tmp_path), "--no-progress"
    )
    match = re.search(r"w = (-?[\d.]+), b = (-?[\d.]+)", out)
    assert match, out
    assert abs(float(match[1]) - 2) < 0.1
    assert abs(float(match[2]) - 1) < 0.1

    from maru.train.loggers import read_metrics
    from maru.train.plot import plot_run

    losses = [value for _, value in read_metrics(tmp_path)["loss"]]
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert plot_run(tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_fashion_mnist_mlp_says_it_is_synthetic_without_files_and_learns(tmp_path: Path) -> None:
    out = run_example(
        "fashion_mnist_mlp.py", "--data", str(tmp_path / "absent"), "--steps", "60",
        "--synthetic-samples", "1000", "--hidden", "64",
    )
    assert "SYNTHETIC" in out and "offline" in out
    match = re.search(r"test accuracy: ([\d.]+)", out)
    assert match, out
    assert float(match[1]) > 0.5  # chance is 0.1


def test_fashion_mnist_mlp_reads_idx_files_from_data_dir(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import fashion_mnist_mlp
    finally:
        sys.path.remove(str(EXAMPLES))
    fashion_mnist_mlp.write_synthetic(tmp_path, 300, 100)
    out = run_example(
        "fashion_mnist_mlp.py", "--data", str(tmp_path), "--steps", "5", "--no-progress"
    )
    assert f"Fashion-MNIST from {tmp_path}" in out
    assert "SYNTHETIC" not in out


def test_char_gpt_loss_falls_and_it_samples() -> None:
    out = run_example(
        "char_gpt.py", "--steps", "40", "--layers", "1", "--dim", "32", "--block", "32",
        "--sample-chars", "40", "--no-progress",
    )
    match = re.search(r"validation loss: ([\d.]+) before training, ([\d.]+) after", out)
    assert match, out
    before, after = float(match[1]), float(match[2])
    assert after < before - 0.5
    assert "sample:" in out


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["tp", "fsdp"])
def test_char_gpt_two_processes(strategy: str) -> None:
    out = run_example(
        "char_gpt.py", "--steps", "20", "--layers", "1", "--dim", "32", "--block", "32",
        "--sample-chars", "20", "--no-progress", "--strategy", strategy, torchrun=2,
    )
    match = re.search(r"validation loss: ([\d.]+) before training, ([\d.]+) after", out)
    assert match, out
    assert float(match[2]) < float(match[1])
    assert out.count("validation loss") == 1  # rank 0 prints
