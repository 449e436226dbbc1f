"""EarlyStopping, ModelCheckpoint, LearningRateMonitor, ThroughputMonitor and ProfilerCallback
against a small stand-in trainer (the attributes callbacks read), one rule at a time."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from maru.errors import TrainError
from maru.train.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ThroughputMonitor,
)


class FakeTrainer:
    """What the callbacks read off a Trainer, and a save_checkpoint that makes a folder."""

    def __init__(self, run_dir: Path | None = None, log_every: int = 1) -> None:
        self.callback_metrics: dict[str, float] = {}
        self.should_stop = False
        self.global_step = 0
        self.current_epoch = 0
        self.is_global_zero = True
        self.world_size = 1
        self.global_rank = 0
        self.run_dir = run_dir
        self.optimizers: list[Any] = []
        self.config = SimpleNamespace(log_every=log_every, tp_size=None, strategy="auto", precision="32")
        self.saved: list[Path] = []

    def save_checkpoint(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "manifest.json").write_text("{}")
        self.saved.append(path)
        return path


class FakeTask:
    def __init__(self) -> None:
        self.logged: dict[str, tuple[float, bool]] = {}
        self.param = torch.nn.Parameter(torch.zeros(1))

    def log(self, name: str, value: float, on_step: bool = True, on_epoch: bool = False, **_: Any) -> None:
        self.logged[name] = (value, on_step)

    def parameters(self) -> Any:
        return iter([self.param])

    def tokens_in(self, batch: Any) -> int | None:
        return int(batch.numel())

    def flops_per_step(self, batch: Any) -> float | None:
        return 1e6


def _validate(callback: Any, trainer: FakeTrainer, value: float, step: int | None = None) -> None:
    trainer.global_step = step if step is not None else trainer.global_step + 1
    trainer.callback_metrics["val_loss"] = value
    callback.on_validation_end(trainer, FakeTask())


def _fitting(callback: Any, trainer: FakeTrainer) -> Any:
    callback.setup(trainer, FakeTask(), "fit")
    return callback


# ------------------------------------------------------------------------ EarlyStopping
def test_early_stopping_waits_patience_checks_without_improvement() -> None:
    trainer = FakeTrainer()
    stopper = _fitting(EarlyStopping("val_loss", patience=2, min_delta=0.1), trainer)
    for value in (1.0, 0.8, 0.75, 0.72):  # 0.75 and 0.72 improve by less than min_delta
        _validate(stopper, trainer, value)
    assert trainer.should_stop and stopper.stopped_step == 4
    assert stopper.best_score == 0.8 and "did not improve" in (stopper.reason or "")


def test_early_stopping_mode_max_and_an_improvement_resets_the_count() -> None:
    trainer = FakeTrainer()
    stopper = _fitting(EarlyStopping("val_loss", mode="max", patience=2), trainer)
    for value in (0.5, 0.4, 0.6, 0.55):
        _validate(stopper, trainer, value)
    assert not trainer.should_stop and stopper.wait_count == 1 and stopper.best_score == 0.6


@pytest.mark.parametrize(
    ("kwargs", "values", "reason"),
    [
        ({"stopping_threshold": 0.1}, (1.0, 0.05), "stopping threshold"),
        ({"divergence_threshold": 5.0}, (1.0, 7.0), "diverged"),
        ({}, (1.0, math.nan), "not finite"),
        ({}, (1.0, math.inf), "not finite"),
    ],
)
def test_early_stopping_stops_at_once_on_thresholds_and_non_finite_values(
    kwargs: dict[str, float], values: tuple[float, ...], reason: str
) -> None:
    trainer = FakeTrainer()
    stopper = _fitting(EarlyStopping("val_loss", patience=10, **kwargs), trainer)
    _validate(stopper, trainer, values[0])
    assert not trainer.should_stop
    _validate(stopper, trainer, values[1])
    assert trainer.should_stop and reason in (stopper.reason or "")


def test_early_stopping_missing_metric_is_an_error_naming_what_was_logged() -> None:
    trainer = FakeTrainer()
    trainer.callback_metrics = {"loss": 1.0}
    stopper = _fitting(EarlyStopping("val_acc"), trainer)
    with pytest.raises(TrainError, match=r"no metric 'val_acc' \(logged: loss\)"):
        stopper.on_validation_end(trainer, FakeTask())
    lenient = _fitting(EarlyStopping("val_acc", strict=False), trainer)
    with pytest.warns(RuntimeWarning, match="val_acc"):
        lenient.on_validation_end(trainer, FakeTask())
    with pytest.raises(TrainError, match="mode='min'"):
        EarlyStopping("val_loss", mode="lowest")


def test_early_stopping_ignores_validation_outside_fit_and_its_state_round_trips() -> None:
    trainer = FakeTrainer()
    stopper = EarlyStopping("val_loss", patience=1)
    stopper.setup(trainer, FakeTask(), "validate")
    _validate(stopper, trainer, 1.0)
    assert stopper.best_score == math.inf  # trainer.validate() is not a check
    stopper.setup(trainer, FakeTask(), "fit")
    _validate(stopper, trainer, 1.0)
    _validate(stopper, trainer, 2.0)
    assert trainer.should_stop
    copy = EarlyStopping("val_loss", patience=1)
    copy.load_state_dict(stopper.state_dict())
    assert (copy.best_score, copy.wait_count, copy.stopped_step) == (1.0, 1, 3)


def test_early_stopping_on_train_epoch_end() -> None:
    trainer = FakeTrainer()
    stopper = _fitting(EarlyStopping("loss", patience=1, check_on_train_epoch_end=True), trainer)
    for value in (1.0, 1.0):
        trainer.callback_metrics["loss"] = value
        stopper.on_validation_end(trainer, FakeTask())  # not where it checks
        assert not trainer.should_stop
        stopper.on_train_epoch_end(trainer, FakeTask())
    assert trainer.should_stop


# ------------------------------------------------------------------------ ModelCheckpoint
def test_checkpoint_names_follow_lightning_templates() -> None:
    values = {"epoch": 2, "step": 300, "val_loss": torch.tensor(0.41234), "val/acc": 0.9}
    assert (
        ModelCheckpoint.format_checkpoint_name("{epoch}-{step}-{val_loss:.3f}", values)
        == "epoch=2-step=300-val_loss=0.412"
    )
    assert ModelCheckpoint.format_checkpoint_name("{epoch:02d}-{val/acc:.2f}", values, False) == "02-0.90"
    assert ModelCheckpoint.format_checkpoint_name("{missing:.1f}", values) == "missing=0.0"


def test_model_checkpoint_keeps_the_best_k_and_deletes_the_rest(tmp_path: Path) -> None:
    trainer = FakeTrainer(run_dir=tmp_path)
    saver = _fitting(
        ModelCheckpoint(monitor="val_loss", save_top_k=2, filename="{step}-{val_loss:.2f}", save_last=True),
        trainer,
    )
    for value in (0.9, 0.5, 0.7, 0.3, 0.8):
        _validate(saver, trainer, value)
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last", "step=2-val_loss=0.50", "step=4-val_loss=0.30"]
    assert saver.best_model_path == str(folder / "step=4-val_loss=0.30")
    assert saver.best_model_score == 0.3
    assert saver.kth_best_model_path == str(folder / "step=2-val_loss=0.50")
    assert saver.last_model_path == str(folder / "last")
    assert set(saver.best_k_models.values()) == {0.3, 0.5}


def test_model_checkpoint_mode_max_nan_is_worst_and_save_top_k_all(tmp_path: Path) -> None:
    trainer = FakeTrainer()
    saver = _fitting(ModelCheckpoint(tmp_path, monitor="val_loss", mode="max", save_top_k=1), trainer)
    for value in (0.2, math.nan, 0.6, 0.4):
        _validate(saver, trainer, value)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch=0-step=3"] and saver.best_model_score == 0.6
    every = _fitting(ModelCheckpoint(tmp_path / "all", monitor="val_loss", save_top_k=-1), trainer)
    for value in (0.2, 0.1):
        _validate(every, trainer, value)
    assert len(list((tmp_path / "all").iterdir())) == 2


def test_model_checkpoint_without_monitor_keeps_the_newest(tmp_path: Path) -> None:
    trainer = FakeTrainer()
    saver = _fitting(ModelCheckpoint(tmp_path, save_top_k=2, every_n_train_steps=2), trainer)
    for step in range(1, 9):
        trainer.global_step = step
        saver.on_train_batch_end(trainer, FakeTask(), None, None, step - 1)
        saver.on_train_batch_end(trainer, FakeTask(), None, None, step - 1)  # another micro-batch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=0-step=6", "epoch=0-step=8"]
    assert saver.best_model_score is None and saver.best_model_path.endswith("step=8")
    assert [p.name for p in trainer.saved] == ["epoch=0-step=2", "epoch=0-step=4", "epoch=0-step=6", "epoch=0-step=8"]


def test_model_checkpoint_every_n_epochs(tmp_path: Path) -> None:
    trainer = FakeTrainer()
    saver = _fitting(ModelCheckpoint(tmp_path, every_n_epochs=2, save_top_k=-1), trainer)
    for epoch in range(4):
        trainer.current_epoch, trainer.global_step = epoch, (epoch + 1) * 10
        saver.on_validation_end(trainer, FakeTask())  # not a trigger with every_n_epochs
        saver.on_train_epoch_end(trainer, FakeTask())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=1-step=20", "epoch=3-step=40"]


def test_model_checkpoint_missing_metric_warns_before_validation_then_raises(tmp_path: Path) -> None:
    trainer = FakeTrainer()
    saver = _fitting(ModelCheckpoint(tmp_path, monitor="val_loss", every_n_train_steps=1), trainer)
    trainer.global_step = 1
    with pytest.warns(RuntimeWarning, match="no checkpoint saved"):
        saver.on_train_batch_end(trainer, FakeTask(), None, None, 0)
    saver.on_validation_end(trainer, FakeTask())
    trainer.global_step = 2
    with pytest.raises(TrainError, match="found no metric 'val_loss'"):
        saver.on_train_batch_end(trainer, FakeTask(), None, None, 1)


def test_model_checkpoint_state_survives_and_stale_paths_are_dropped(tmp_path: Path) -> None:
    trainer = FakeTrainer()
    saver = _fitting(ModelCheckpoint(tmp_path, monitor="val_loss", save_top_k=2), trainer)
    for value in (0.5, 0.4):
        _validate(saver, trainer, value)
    state = saver.state_dict()
    gone = Path(saver.kth_best_model_path)
    (gone / "manifest.json").unlink()
    gone.rmdir()
    restored = _fitting(ModelCheckpoint(tmp_path, monitor="val_loss", save_top_k=2), trainer)
    restored.load_state_dict(state)
    assert list(restored.best_k_models) == [saver.best_model_path]
    elsewhere = _fitting(ModelCheckpoint(tmp_path / "b", monitor="val_loss"), trainer)
    with pytest.warns(RuntimeWarning, match="not carried over"):
        elsewhere.load_state_dict(state)


def test_model_checkpoint_needs_a_folder_and_cleans_dead_saves(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="dirpath"):
        ModelCheckpoint(monitor="val_loss").setup(FakeTrainer(), FakeTask(), "fit")
    dead = tmp_path / "checkpoints" / ".epoch=0-step=3.saving"
    dead.mkdir(parents=True)
    keep = tmp_path / "checkpoints" / "notes"
    keep.mkdir()
    ModelCheckpoint().setup(FakeTrainer(run_dir=tmp_path), FakeTask(), "fit")
    assert not dead.exists() and keep.exists()
    with pytest.raises(TrainError, match="not both"):
        ModelCheckpoint(every_n_train_steps=1, every_n_epochs=1)


# ------------------------------------------------------------------------ LearningRateMonitor
def test_lr_monitor_names_every_group_of_every_optimizer() -> None:
    a, b, c = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    trainer = FakeTrainer(log_every=2)
    trainer.optimizers = [
        torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9),
        torch.optim.Adam([c], lr=1e-3, weight_decay=0.01),
        torch.optim.Adam([c], lr=2e-3),
    ]
    monitor = LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    task = FakeTask()
    trainer.global_step = 1
    monitor.on_train_batch_end(trainer, task, None, None, 0)
    assert task.logged == {}  # not a logging step
    trainer.global_step = 2
    monitor.on_train_batch_end(trainer, task, None, None, 1)
    values = {name: value for name, (value, _) in task.logged.items()}
    assert values == {
        "lr-SGD/pg1": 0.1,
        "lr-SGD/pg2": 0.5,
        "momentum-SGD/pg1": 0.9,
        "momentum-SGD/pg2": 0.9,
        "weight_decay-SGD/pg1": 0.0,
        "weight_decay-SGD/pg2": 0.0,
        "lr-Adam": 1e-3,
        "momentum-Adam": 0.9,
        "weight_decay-Adam": 0.01,
        "lr-Adam-1": 2e-3,
        "momentum-Adam-1": 0.9,
        "weight_decay-Adam-1": 0.0,
    }
    epochly = LearningRateMonitor(logging_interval="epoch")
    task = FakeTask()
    epochly.on_train_epoch_start(trainer, task)
    assert task.logged["lr-Adam"] == (1e-3, False)
    with pytest.raises(TrainError, match="'step' or 'epoch'"):
        LearningRateMonitor(logging_interval="batch")


# ------------------------------------------------------------------------ ThroughputMonitor
def test_throughput_counts_samples_tokens_and_flops_per_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 102.0, 102.5, 104.5, 106.5])
    monkeypatch.setattr("maru.train.callbacks.throughput.time.perf_counter", lambda: next(clock))
    trainer = FakeTrainer(log_every=2)
    trainer.world_size = 2
    task = FakeTask()
    monitor = ThroughputMonitor(peak_flops=1e6)
    monitor.on_train_start(trainer, task)  # 100.0
    batch = torch.zeros(4, 8)  # 4 samples, 32 tokens
    for step in (1, 2):
        trainer.global_step = step
        monitor.on_train_batch_end(trainer, task, None, batch, step - 1)
    # window 100.0 -> 102.0: 8 samples, 64 tokens, 2 steps of 1e6 FLOPs on this rank
    figures = monitor.figures
    assert figures["throughput/device/samples_per_s"] == 4.0
    assert figures["throughput/samples_per_s"] == 8.0  # two data-parallel ranks
    assert figures["throughput/device/tokens_per_s"] == 32.0 and figures["throughput/tokens_per_s"] == 64.0
    assert figures["throughput/mfu"] == pytest.approx(1.0)
    assert task.logged["throughput/mfu"][0] == pytest.approx(1.0)
    # validation from 102.5 to 104.5 is not counted: window 102.0 -> 106.5 less 2 s
    monitor.on_validation_start(trainer, task)
    monitor.on_validation_end(trainer, task)
    for step in (3, 4):
        trainer.global_step = step
        monitor.on_train_batch_end(trainer, task, None, batch, step - 1)
    assert monitor.figures["throughput/device/samples_per_s"] == pytest.approx(8 / 2.5)
