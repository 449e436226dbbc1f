"""The loop side of callbacks and evaluation: hooks in Lightning's order, ``self.log`` per stage
(means over batches, weighted by batch size), validation once per boundary, ``should_stop``,
``limit_*_batches``, ``fast_dev_run``, ``max_time``, ``validate`` / ``test`` / ``predict``, and
callbacks' state in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from maru.errors import TrainError  # noqa: E402
from maru.train import Callback, Task, Trainer  # noqa: E402
from maru.train.hooks import HOOKS  # noqa: E402


def _batches(n: int = 4, size: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n * size, 4, generator=gen)
    y = x.sum(-1)
    return [{"x": x[i : i + size], "y": y[i : i + size]} for i in range(0, n * size, size)]


class Regression(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.val_calls = 0

    def _loss(self, batch: dict[str, Any]) -> Any:
        return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        loss = self._loss(batch)
        self.log("train_mse", loss)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.val_calls += 1
        self.log("val_mse", self._loss(batch))

    def test_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.log("test_mse", self._loss(batch))

    def predict_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        return self.net(batch["x"]).squeeze(-1)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _trainer(**kwargs: Any) -> Trainer:
    kwargs.setdefault("log_every", 1)
    return Trainer(progress=False, loggers=None, seed=1, **kwargs)


def _mean_mse(task: Regression, batches: list[dict[str, Any]]) -> float:
    with torch.no_grad():
        total = sum(float(task._loss(b)) * len(b["y"]) for b in batches)
    return total / sum(len(b["y"]) for b in batches)


def test_log_in_validation_step_is_the_validation_mean_not_a_training_metric() -> None:
    # the fourth silent bug: it landed among training metrics as the last batch's value
    task = Regression()
    val = _batches(2, size=8) + _batches(1, size=3, seed=5)  # unequal batches: weighted mean
    trainer = _trainer(max_steps=4)
    result = trainer.fit(task, _batches(), val)
    assert "val_mse" not in result.metrics and "val_mse" in result.val_metrics
    assert result.val_metrics["val_mse"] == pytest.approx(_mean_mse(task, val), rel=1e-5)
    assert trainer.callback_metrics["val_mse"] == result.val_metrics["val_mse"]
    assert "train_mse" in trainer.logged_metrics


def test_last_validation_runs_once_when_max_steps_is_a_multiple_of_val_every() -> None:
    # the fifth silent bug: validation at step 4 and again as the final validation
    task = Regression()
    _trainer(max_steps=4, val_every=2).fit(task, _batches(8), _batches(2))
    assert task.val_calls == 2 * 2  # steps 2 and 4, two batches each


def test_validation_per_epoch_by_default_and_never_twice_at_the_end() -> None:
    task = Regression()
    _trainer(max_epochs=3).fit(task, _batches(), _batches(2))
    assert task.val_calls == 3 * 2


def test_validation_every_n_epochs_and_a_fraction_of_an_epoch() -> None:
    task = Regression()
    _trainer(max_epochs=4, check_val_every_n_epoch=2).fit(task, _batches(), _batches(1))
    assert task.val_calls == 2
    task = Regression()
    _trainer(max_epochs=2, val_check_interval=0.5).fit(task, _batches(), _batches(1))
    assert task.val_calls == 4  # after batches 2 and 4 of each epoch


def test_epoch_metrics_are_batch_size_weighted_means() -> None:
    class OnEpoch(Regression):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            loss = self._loss(batch)
            self.log("size", float(len(batch["y"])), on_step=False, on_epoch=True)
            self.log("both", loss, on_step=True, on_epoch=True, prog_bar=True)
            return loss

    data = _batches(1, size=8) + _batches(1, size=2, seed=3)
    trainer = _trainer(max_epochs=1)
    trainer.fit(OnEpoch(), data)
    assert trainer.callback_metrics["size"] == pytest.approx((8 * 8 + 2 * 2) / 10)
    assert {"both_step", "both_epoch"} <= set(trainer.callback_metrics)


def _recording(name: str) -> Any:
    def hook(self: Recorder, trainer: Trainer, task: Task, *args: Any) -> None:
        self.calls.append(name)
        if name == "on_train_batch_end":
            self.batch_ends.append((args[-1], trainer.global_step))
            self.count += 1

    return hook


class Recorder(Callback):
    """Overrides every hook (built from the list the trainer calls) and records the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.batch_ends: list[tuple[int, int]] = []
        self.loaded: dict[str, Any] | None = None
        self.count = 0

    locals().update({name: _recording(name) for name in HOOKS})

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loaded = state_dict


def test_hooks_are_called_in_lightnings_order() -> None:
    recorder = Recorder()
    _trainer(max_epochs=1, callbacks=[recorder]).fit(Regression(), _batches(2), _batches(1))
    calls = [c for c in recorder.calls if "batch" not in c and c != "on_before_optimizer_step"]
    assert calls == [
        "setup", "on_fit_start", "on_train_start", "on_train_epoch_start",
        "on_validation_start", "on_validation_epoch_start", "on_validation_epoch_end",
        "on_validation_end", "on_train_epoch_end", "on_train_end", "on_fit_end", "teardown",
    ]
    assert recorder.calls.count("on_train_batch_start") == 2
    assert recorder.calls.count("on_before_optimizer_step") == 2
    assert recorder.calls.count("on_validation_batch_end") == 1
    assert recorder.batch_ends == [(0, 1), (1, 2)]


def test_should_stop_ends_fit_cleanly_at_the_end_of_the_step() -> None:
    class StopAt3(Callback):
        def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):  # type: ignore[no-untyped-def]
            if trainer.global_step == 3:
                trainer.should_stop = True

    trainer = _trainer(max_steps=100, callbacks=[StopAt3()])
    assert trainer.fit(Regression(), _batches()).step == 3


def test_on_exception_and_teardown_see_a_failure() -> None:
    class Boom(Regression):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    recorder = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        _trainer(max_steps=2, callbacks=[recorder]).fit(Boom(), _batches())
    assert recorder.calls[-2:] == ["on_exception", "teardown"]


def test_callback_state_and_hooks_go_through_checkpoints(tmp_path: Path) -> None:
    class Extra(Callback):
        def on_save_checkpoint(self, trainer, task, checkpoint):  # type: ignore[no-untyped-def]
            checkpoint["note"] = trainer.global_step

        def on_load_checkpoint(self, trainer, task, checkpoint):  # type: ignore[no-untyped-def]
            self.note = checkpoint["note"]

    first = Recorder()
    _trainer(max_steps=3, checkpoint_dir=tmp_path, callbacks=[first, Extra()]).fit(Regression(), _batches())
    second, extra = Recorder(), Extra()
    with pytest.warns(UserWarning, match="keeps no place"):  # a list of batches restarts its epoch
        _trainer(max_steps=5, checkpoint_dir=tmp_path, callbacks=[second, extra]).fit(Regression(), _batches())
    assert second.loaded == {"count": 3} and extra.note == 3


def test_save_checkpoint_to_a_path(tmp_path: Path) -> None:
    class SaveAt2(Callback):
        def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):  # type: ignore[no-untyped-def]
            if trainer.global_step == 2:
                trainer.save_checkpoint(tmp_path / "best")

    _trainer(max_steps=4, callbacks=[SaveAt2()]).fit(Regression(), _batches())
    assert (tmp_path / "best" / "manifest.json").exists()


def test_limit_batches_and_fast_dev_run() -> None:
    task = Regression()
    result = _trainer(max_epochs=2, limit_train_batches=0.5, limit_val_batches=1).fit(
        task, _batches(), _batches(3)
    )
    assert result.step == 4 and task.val_calls == 2
    task = Regression()
    result = _trainer(max_epochs=5, fast_dev_run=2).fit(task, _batches(), _batches(3))
    assert result.step == 2 and task.val_calls == 2


def test_max_time_stops_and_parses_lightning_durations() -> None:
    assert _trainer(max_steps=10**6, max_time=0.2).fit(Regression(), _batches()).step < 10**6
    with pytest.raises(TrainError, match="max_time"):
        _trainer(max_steps=1, max_time="1:2")
    _trainer(max_steps=1, max_time="00:00:01:00")


def test_validate_test_and_predict() -> None:
    task, trainer = Regression(), _trainer(max_steps=4)
    trainer.fit(task, _batches())
    data = _batches(3, seed=7)
    assert trainer.validate(task, data)[0]["val_mse"] == pytest.approx(_mean_mse(task, data), rel=1e-5)
    assert trainer.test(task, data)[0]["test_mse"] == pytest.approx(_mean_mse(task, data), rel=1e-5)
    predictions = trainer.predict(task, data)
    assert len(predictions) == 3 and predictions[0].shape == (8,)
    assert task.training  # put back in training mode


def test_test_without_a_test_step_says_so() -> None:
    class NoTest(Task):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            return batch

    with pytest.raises(TrainError, match="test_step"):
        _trainer(max_steps=1).test(NoTest(), _batches())


def test_callbacks_must_be_callbacks_and_save_checkpoint_needs_a_running_fit(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="Callback"):
        _trainer(max_steps=1, callbacks=[object()]).fit(Regression(), _batches())  # type: ignore[list-item]
    with pytest.raises(TrainError, match="while fit runs"):
        _trainer(max_steps=1).save_checkpoint(tmp_path / "x")


def test_two_ranks_sync_dist_means_and_a_stop_every_rank_agrees_on(tmp_path: Path) -> None:
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "scripts"))
    import train_runner as tr

    tr.check(tr.run_script(tmp_path, nproc=2, script="train_hooks_ddp.py"))
    ranks = [json.loads((tmp_path / f"hooks{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in ranks] == [4, 4]  # validations at steps 2 and 4, then stopped
    for r, got in enumerate(ranks):
        metrics = got["metrics"]
        assert metrics["val_rank_synced"] == 1.5 and metrics["val_rank_local"] == r + 1
        assert metrics["rank_step"] == 0.5
        assert metrics["val_loss"] == ranks[0]["metrics"]["val_loss"]  # returned values: reduced
        assert got["test"]["test_rank"] == 0.5
    assert "rank_epoch" in ranks[0]["metrics"] and ranks[0]["metrics"]["rank_epoch"] == 0.5
