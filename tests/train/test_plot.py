"""plot_run and `maru train plot` write a real PNG of the loss curves."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru.cli import app
from maru.errors import TrainError
from maru.train.loggers import CSVLogger
from maru.train.plot import plot_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_run(run_dir: Path, steps: int = 20) -> None:
    logger = CSVLogger(run_dir)
    for step in range(1, steps + 1):
        metrics = {"loss": 3.0 / step, "lr": 1e-3}
        if step % 5 == 0:
            metrics["val_loss"] = 3.2 / step
        logger.log_metrics(metrics, step)
    logger.finalize()


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_plot_run_writes_loss_png_in_the_run_dir(tmp_path: Path) -> None:
    _write_run(tmp_path)
    path = plot_run(tmp_path)
    assert path == tmp_path / "loss.png"
    _assert_png(path)


def test_plot_run_to_another_path_and_other_metrics(tmp_path: Path) -> None:
    _write_run(tmp_path)
    out = tmp_path / "plots" / "lr.png"
    assert plot_run(tmp_path, out, metrics=("lr",)) == out
    _assert_png(out)


def test_plot_run_without_the_metrics_lists_what_was_logged(tmp_path: Path) -> None:
    _write_run(tmp_path)
    with pytest.raises(TrainError, match=r"logged: loss, lr, val_loss"):
        plot_run(tmp_path, metrics=("accuracy",))


def test_plot_run_without_metrics_csv(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="no metrics file"):
        plot_run(tmp_path)


def test_cli_plot(tmp_path: Path) -> None:
    _write_run(tmp_path)
    out = tmp_path / "curve.png"
    result = CliRunner().invoke(app, ["train", "plot", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    _assert_png(out)


def test_cli_plot_error_exits_2_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "plot", str(tmp_path)])
    assert result.exit_code == 2
    assert "no metrics file" in result.output
