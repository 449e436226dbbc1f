"""Optimizers and schedulers as Lightning users write them in ``configure_optimizers``: the step or
epoch interval, ``frequency``, ReduceLROnPlateau with its monitored metric, several optimizers,
manual optimization — and an error that says what was expected for anything else."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from maru.errors import TrainError  # noqa: E402
from maru.train import Task, Trainer  # noqa: E402


def _batches(n: int = 4, size: int = 8) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n * size, 4, generator=gen)
    y = x.sum(-1)
    return [{"x": x[i : i + size], "y": y[i : i + size]} for i in range(0, n * size, size)]


class Regression(Task):
    """A linear model whose ``configure_optimizers`` is given per test."""

    def __init__(self, configure: Any = None) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.configure = configure

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        loss = nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])
        self.log("val_mse", loss)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return self.configure(self)


def _fit(task: Task, **kwargs: Any) -> Trainer:
    kwargs.setdefault("max_epochs", 3)
    val = kwargs.pop("val", None)
    trainer = Trainer(progress=False, loggers=None, seed=1, log_every=1, **kwargs)
    trainer.fit(task, _batches(), val)
    return trainer


def _sgd(task: Any, lr: float = 0.1) -> Any:
    return torch.optim.SGD(task.parameters(), lr=lr)


def _lr(opt: Any) -> float:
    return float(opt.param_groups[0]["lr"])


def test_step_lr_with_interval_epoch_steps_once_per_epoch() -> None:
    # the first silent bug: the dict was ignored and StepLR stepped every optimizer step
    def configure(task: Task) -> Any:
        opt = _sgd(task)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    trainer = _fit(Regression(configure))  # 3 epochs of 4 steps
    assert _lr(trainer.optimizers[0]) == pytest.approx(0.1 * 0.5**3)


def test_interval_step_with_frequency() -> None:
    def configure(task: Task) -> Any:
        opt = _sgd(task)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 4}}

    trainer = _fit(Regression(configure))  # 12 steps, stepped every 4th
    assert _lr(trainer.optimizers[0]) == pytest.approx(0.1 * 0.5**3)


def test_maru_pair_steps_its_scheduler_every_optimizer_step() -> None:
    def configure(task: Task) -> Any:
        opt = _sgd(task)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    trainer = _fit(Regression(configure), max_epochs=1)
    assert _lr(trainer.optimizers[0]) == pytest.approx(0.1 * 0.5**4)


def test_reduce_lr_on_plateau_steps_with_its_monitored_validation_metric() -> None:
    seen: list[float] = []

    class Plateau(torch.optim.lr_scheduler.ReduceLROnPlateau):  # type: ignore[name-defined,misc]
        def step(self, metrics, epoch=None):  # type: ignore[no-untyped-def,override]
            seen.append(float(metrics))
            super().step(metrics)

    def configure(task: Task) -> Any:
        opt = _sgd(task, 1e-6)  # no progress: the plateau is reached
        sched = Plateau(opt, patience=0, factor=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_mse"}}

    trainer = _fit(Regression(configure), val=_batches(2))
    assert len(seen) == 3  # once per epoch, after that epoch's validation
    assert seen[-1] == pytest.approx(trainer.callback_metrics["val_mse"])
    assert _lr(trainer.optimizers[0]) < 1e-6


def test_reduce_lr_on_plateau_with_a_missing_metric_says_which_exist() -> None:
    def configure(task: Task) -> Any:
        opt = _sgd(task)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_acc"}}

    with pytest.raises(TrainError, match="val_acc.*val_mse"):
        _fit(Regression(configure), val=_batches(2))


def test_reduce_lr_on_plateau_without_a_monitor_is_an_error() -> None:
    def configure(task: Task) -> Any:
        opt = _sgd(task)
        return opt, torch.optim.lr_scheduler.ReduceLROnPlateau(opt)

    with pytest.raises(TrainError, match="monitor"):
        _fit(Regression(configure))


def test_a_list_of_two_optimizers_steps_both() -> None:
    # the third silent bug: [adam, sgd] was read as (optimizer, scheduler)
    class TwoHeads(Regression):
        def __init__(self) -> None:
            super().__init__()
            self.other = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            pred = (self.net(batch["x"]) + self.other(batch["x"])).squeeze(-1)
            return nn.functional.mse_loss(pred, batch["y"])

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return [torch.optim.Adam(self.net.parameters(), 0.01), _sgd(self.other, 0.01)]

    task = TwoHeads()
    before = [p.detach().clone() for p in task.parameters()]
    trainer = _fit(task, max_epochs=1)
    assert [type(o).__name__ for o in trainer.optimizers] == ["Adam", "SGD"]
    assert trainer.lr_schedulers == []
    assert all(not torch.equal(b, p) for b, p in zip(before, task.parameters(), strict=True))


def test_lists_of_optimizers_and_schedulers_and_a_list_of_dicts() -> None:
    def two_lists(task: Task) -> Any:
        a, b = _sgd(task.net), _sgd(task.other)
        return [a, b], [torch.optim.lr_scheduler.StepLR(b, 1, 0.5)]

    def dicts(task: Task) -> Any:
        a, b = _sgd(task.net), _sgd(task.other)
        return (
            {"optimizer": a, "lr_scheduler": torch.optim.lr_scheduler.StepLR(a, 1, 0.5)},
            {"optimizer": b},
        )

    class Two(Regression):
        def __init__(self, configure: Any) -> None:
            super().__init__(configure)
            self.other = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            pred = (self.net(batch["x"]) + self.other(batch["x"])).squeeze(-1)
            return nn.functional.mse_loss(pred, batch["y"])

    # Lightning's forms step a scheduler every epoch unless told "interval": "step"
    first = _fit(Two(two_lists), max_epochs=2)
    assert [_lr(o) for o in first.optimizers] == pytest.approx([0.1, 0.1 * 0.5**2])
    second = _fit(Two(dicts), max_epochs=2)
    assert [_lr(o) for o in second.optimizers] == pytest.approx([0.1 * 0.5**2, 0.1])


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (lambda t: [_sgd(t), "adam"], "expected"),
        (lambda t: {"lr_scheduler": None}, "'optimizer'"),
        (lambda t: {"optimizer": _sgd(t), "lr_scheduler": {"interval": "step"}}, "'scheduler'"),
        (lambda t: _opt_with_interval(t, "batch"), "interval"),
        (lambda t: None, "expected"),
    ],
)
def test_unrecognised_configurations_say_what_was_expected(returned: Any, expected: str) -> None:
    with pytest.raises(TrainError, match=expected):
        _fit(Regression(returned), max_epochs=1)


def _opt_with_interval(task: Task, interval: str) -> Any:
    opt = _sgd(task)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


def test_manual_optimization() -> None:
    class Manual(Regression):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            opt = self.optimizers()
            sched = self.lr_schedulers()
            loss = super().training_step(batch, batch_idx)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            if batch_idx == 3:
                sched.step()
            return loss

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            opt = _sgd(self, 0.05)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)]

    task = Manual()
    before = task.net.weight.detach().clone()
    trainer = _fit(task, max_epochs=2)
    assert trainer.global_step == 8
    assert _lr(trainer.optimizers[0]) == pytest.approx(0.05 * 0.5**2)  # stepped by the task only
    assert not torch.equal(before, task.net.weight)
    assert trainer.logged_metrics["loss"] > 0


def test_manual_optimization_refuses_gradient_accumulation() -> None:
    class Manual(Regression):
        automatic_optimization = False

    with pytest.raises(TrainError, match="manual optimization"):
        _fit(Manual(lambda t: _sgd(t)), grad_accum=2)


def test_manual_optimization_refuses_data_parallel_strategies() -> None:
    from maru.train.precision import Precision
    from maru.train.strategies import DDP
    from maru.train.trainer import _check_manual

    class Manual(Regression):
        automatic_optimization = False

    ddp = DDP()
    ddp.dp_size = 2
    config = Trainer(max_steps=1).config
    with pytest.raises(TrainError, match="one process or with strategy='tp'"):
        _check_manual(Manual(), config, Precision("32", torch.device("cpu")), ddp)
