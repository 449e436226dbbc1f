"""The Trainer in one process: training, metrics, validation, accumulation, precision, logging,
preemption and the errors a wrong setup gets."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from maru.errors import TrainError  # noqa: E402
from maru.train import Preempted, ShardedDataset, Task, TensorSource, Trainer  # noqa: E402
from maru.train.task import split_optimizers  # noqa: E402
from maru.train.trainer import move_to_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from train_mlp import MLP, make_data  # noqa: E402


def _data(batch_size: int = 8) -> ShardedDataset:
    return ShardedDataset(TensorSource(make_data()), batch_size=batch_size, seed=3)


def _trainer(**kwargs: Any) -> Trainer:
    kwargs.setdefault("max_steps", 10)
    kwargs.setdefault("log_every", 2)
    return Trainer(progress=False, loggers=None, seed=1, **kwargs)


def test_fit_trains_and_reports() -> None:
    trainer = _trainer(max_steps=30, log_every=10)
    task = MLP(0.0, 0.03)
    val = ShardedDataset(TensorSource(make_data(64, seed=9)), batch_size=16, shuffle=False)
    result = trainer.fit(task, _data(), val)
    assert result.step == 30 and trainer.step == 30
    assert result.loss is not None and result.loss < 3.0
    assert {"loss", "lr", "epoch", "pred_mean", "step_time_s", "samples_per_s"} <= set(result.metrics)
    assert result.metrics["samples_per_s"] > 0
    assert "val_loss" in result.val_metrics and result.val_metrics["val_loss"] < 3.0
    assert result.checkpoint is None and result.resumed_from is None


def test_max_epochs_over_a_plain_list_of_batches() -> None:
    data = make_data(32)
    batches = [{k: v[i : i + 8] for k, v in data.items()} for i in range(0, 32, 8)]
    task = MLP(0.0, 0.03)
    result = _trainer(max_steps=None, max_epochs=3).fit(task, batches)
    assert result.step == 12 and result.epoch == 3 and len(task.seen) == 12


def test_grad_accumulation_equals_a_bigger_batch() -> None:
    big, small = MLP(0.0, 0.03), MLP(0.0, 0.03)
    small.load_state_dict(big.state_dict())
    _trainer(max_steps=5).fit(big, _data(8))
    _trainer(max_steps=5, grad_accum=2).fit(small, _data(4))
    for p, q in zip(big.parameters(), small.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_dict_output_metrics_and_clipping_are_logged() -> None:
    class DictTask(MLP):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            loss = super().training_step(batch)
            return {"loss": loss, "twice": loss.detach() * 2}

    result = _trainer(clip_grad_norm=0.1).fit(DictTask(0.0, 0.03), _data())
    assert result.metrics["twice"] == pytest.approx(2 * result.metrics["loss"], rel=1e-5)
    assert result.metrics["grad_norm"] > 0


def test_bf16_mixed_on_cpu_and_fp16_falls_back_with_a_warning() -> None:
    assert _trainer(precision="bf16-mixed").fit(MLP(0.0, 0.03), _data()).loss is not None
    with pytest.warns(UserWarning, match="needs a GPU"):
        result = _trainer(precision="16-mixed").fit(MLP(0.0, 0.03), _data())
    assert result.loss is not None
    with pytest.raises(TrainError, match="precision"):
        _trainer(precision="8-bit").fit(MLP(0.0, 0.03), _data())


def test_no_device_reads_between_logging_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def from_trainer() -> None:  # optimizers and the data reader may read CPU scalars
        if sys._getframe(2).f_code.co_filename.endswith("trainer.py"):
            calls["n"] += 1

    def counting_item(self):  # type: ignore[no-untyped-def]
        from_trainer()
        return item(self)

    def counting_tolist(self):  # type: ignore[no-untyped-def]
        from_trainer()
        return tolist(self)

    class Quiet(MLP):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            pred = self.net(batch["x"]).squeeze(-1)
            return nn.functional.mse_loss(pred, batch["y"])

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    monkeypatch.setattr(torch.Tensor, "tolist", counting_tolist)
    _trainer(max_steps=40, log_every=20).fit(Quiet(0.0, 0.03), _data())
    assert calls["n"] == 3  # one per logging step (2) and the final loss


def test_csv_metrics_written_under_run_dir(tmp_path: Path) -> None:
    trainer = Trainer(max_steps=6, log_every=2, progress=False, run_dir=tmp_path, loggers=["csv"])
    trainer.fit(MLP(0.0, 0.03), _data())
    text = (tmp_path / "metrics.csv").read_text()
    assert "loss" in text and len(text.splitlines()) >= 3


def test_sigterm_in_one_process_checkpoints_then_resume_finishes(tmp_path: Path) -> None:
    class TermAt3(MLP):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            if self.calls == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().training_step(batch)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as info:
        _trainer(checkpoint_dir=tmp_path).fit(TermAt3(0.0, 0.03), _data())
    assert info.value.code == 143 and info.value.step == 3
    assert signal.getsignal(signal.SIGTERM) == before
    resumed = _trainer(checkpoint_dir=tmp_path)
    result = resumed.fit(MLP(0.0, 0.03), _data())
    assert result.resumed_from is not None and result.step == 10


def test_resume_with_a_plain_iterable_warns(tmp_path: Path) -> None:
    data = make_data(32)
    batches = [{k: v[i : i + 8] for k, v in data.items()} for i in range(0, 32, 8)]
    _trainer(max_steps=2, checkpoint_dir=tmp_path).fit(MLP(0.0, 0.03), batches)
    with pytest.warns(UserWarning, match="no mid-epoch resume"):
        result = _trainer(max_steps=4, checkpoint_dir=tmp_path).fit(MLP(0.0, 0.03), batches)
    assert result.step == 4


def test_configuration_errors() -> None:
    with pytest.raises(TrainError, match="max_steps or max_epochs"):
        Trainer()
    with pytest.raises(TrainError, match="grad_accum"):
        Trainer(max_steps=1, grad_accum=0)
    with pytest.raises(TrainError, match="checkpoint_dir"):
        Trainer(max_steps=1, checkpoint_every=5)
    with pytest.raises(TrainError, match="maru.train.Task"):
        _trainer().fit(nn.Linear(2, 2), [])  # type: ignore[arg-type]

    class NoVal(Task):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            return batch

    with pytest.raises(TrainError, match="validation_step"):
        _trainer().fit(NoVal(), [], val_data=[])
    with pytest.raises(TrainError, match="training_step"):
        _trainer().fit(Task(), [])


def test_configure_optimizers_forms() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    assert split_optimizers(opt) == ([opt], [])
    assert split_optimizers((opt, sched)) == ([opt], [sched])
    assert split_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": sched}}) == ([opt], [sched])
    assert split_optimizers((opt,)) == ([opt], [])  # a tuple of optimizers, as in Lightning
    for bad in (None, {"lr": 1}, (opt, "sched")):
        with pytest.raises(TrainError, match="configure_optimizers"):
            split_optimizers(bad)


def test_move_to_device_keeps_structure() -> None:
    batch = {"a": torch.ones(2), "b": (torch.zeros(1), [torch.ones(1)]), "n": 3}
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved["b"], tuple) and isinstance(moved["b"][1], list) and moved["n"] == 3
    assert torch.equal(moved["a"], batch["a"])
