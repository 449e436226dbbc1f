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


def test_fashion_mnist_mlp_without_files_trains_on_real_digits_and_reports_held_out_accuracy(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sklearn")
    out = run_example(
        "fashion_mnist_mlp.py", "--data", str(tmp_path / "absent"), "--steps", "120",
        "--hidden", "64", "--no-progress",
    )  # fmt: skip
    assert "DIGITS" in out and "no download" in out
    train = re.search(r"train accuracy: ([\d.]+) on the (\d+) training images", out)
    test = re.search(r"test accuracy: ([\d.]+) on (\d+) held-out images", out)
    assert train and test, out
    assert (int(train[2]), int(test[2])) == (1348, 449)  # 1,797 digits, a quarter held out
    assert 0.85 < float(test[1]) < 1.0  # chance is 0.1; real images are not all learnable
    assert float(train[1]) >= float(test[1]) - 0.02


def test_fashion_mnist_mlp_reads_idx_files_from_data_dir(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import fashion_mnist_mlp
    finally:
        sys.path.remove(str(EXAMPLES))
    fashion_mnist_mlp.write_digits(tmp_path)
    out = run_example(
        "fashion_mnist_mlp.py", "--data", str(tmp_path), "--steps", "5", "--no-progress"
    )
    assert f"Fashion-MNIST from {tmp_path}" in out
    assert "DIGITS" not in out


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
