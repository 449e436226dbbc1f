"""CSV and TensorBoard loggers, make_loggers, and reading metrics.csv back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maru.errors import TrainError
from maru.train.loggers import (
    CSVLogger,
    Logger,
    TensorBoardLogger,
    make_loggers,
    read_metrics,
)


def test_csv_rows_are_readable_after_each_call_without_finalize(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss": 2.5}, step=1)
    assert read_metrics(tmp_path) == {"loss": [(1, 2.5)]}  # flushed: a crash here loses nothing
    logger.log_metrics({"loss": 2.0, "val_loss": 2.2}, step=2)  # a new name appears
    assert read_metrics(tmp_path) == {"loss": [(1, 2.5), (2, 2.0)], "val_loss": [(2, 2.2)]}
    logger.finalize()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,name,value"
    assert len(lines) == 4


def test_tensor_values_are_converted(tmp_path: Path) -> None:
    import torch

    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss": torch.tensor(1.25)}, step=3)
    logger.finalize()
    assert read_metrics(tmp_path) == {"loss": [(3, 1.25)]}


def test_resume_appends_and_repeated_steps_replace_earlier_ones(tmp_path: Path) -> None:
    first = CSVLogger(tmp_path)
    for step in range(1, 6):
        first.log_metrics({"loss": 10.0 - step}, step)
    first.finalize()
    # the run crashed after step 5; its last checkpoint was step 3, so it resumes at 4
    second = CSVLogger(tmp_path)
    second.log_metrics({"loss": 0.4}, 4)
    second.log_metrics({"loss": 0.5}, 5)
    second.log_metrics({"loss": 0.6}, 6)
    second.finalize()
    assert read_metrics(tmp_path)["loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 0.4), (5, 0.5), (6, 0.6)]
    assert (tmp_path / "metrics.csv").read_text().count("step,name,value") == 1


def test_a_half_written_row_is_skipped_and_the_next_run_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,name,value\n1,loss,2.0\n2,lo")
    assert read_metrics(tmp_path) == {"loss": [(1, 2.0)]}
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss": 1.5}, 2)
    logger.finalize()
    assert read_metrics(tmp_path) == {"loss": [(1, 2.0), (2, 1.5)]}


def test_a_foreign_csv_is_not_appended_to(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("epoch,acc\n1,0.5\n")
    with pytest.raises(TrainError, match="not a maru metrics file"):
        CSVLogger(tmp_path).log_metrics({"loss": 1.0}, 1)
    with pytest.raises(TrainError, match="not a maru metrics file"):
        read_metrics(tmp_path)


def test_reading_a_run_without_metrics_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="no metrics file"):
        read_metrics(tmp_path)


def test_hparams_are_merged_into_json(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path)
    logger.log_hparams({"lr": 3e-4, "strategy": "ddp"})
    logger.log_hparams({"batch_size": 32, "betas": (0.9, 0.95), "device": object()})
    saved = json.loads((tmp_path / "hparams.json").read_text())
    assert saved["lr"] == 3e-4 and saved["strategy"] == "ddp" and saved["batch_size"] == 32
    assert saved["betas"] == [0.9, 0.95]
    assert isinstance(saved["device"], str)


def test_tensorboard_writes_event_files_with_the_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path)
    logger.log_hparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.5}, 1)
    logger.log_metrics({"loss": 1.0}, 2)
    logger.finalize()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 1.5), (2, 1.0)]


def test_tensorboard_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(TrainError, match="pip install"):
        TensorBoardLogger(tmp_path)


def test_make_loggers_auto_none_and_lists(tmp_path: Path) -> None:
    auto = make_loggers("auto", tmp_path)
    assert [type(x) for x in auto] == [CSVLogger, TensorBoardLogger]
    for logger in auto:
        logger.finalize()
    assert make_loggers("auto", None) == []
    assert make_loggers(None, tmp_path) == []
    mine = CSVLogger(tmp_path / "other")
    chosen = make_loggers(["csv", mine], tmp_path)
    assert isinstance(chosen[0], CSVLogger) and chosen[1] is mine
    assert all(isinstance(x, Logger) for x in chosen)
    assert [type(x) for x in make_loggers("tb", tmp_path)] == [TensorBoardLogger]


def test_make_loggers_without_tensorboard_uses_csv_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("maru.train.loggers._tensorboard_installed", lambda: False)
    assert [type(x) for x in make_loggers("auto", tmp_path)] == [CSVLogger]


def test_make_loggers_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="unknown logger 'wandb'"):
        make_loggers(["wandb"], tmp_path)
    with pytest.raises(TrainError, match="give the Trainer a run_dir"):
        make_loggers(["csv"], None)
    with pytest.raises(TrainError, match="is not a logger"):
        make_loggers([object()], tmp_path)  # type: ignore[list-item]
