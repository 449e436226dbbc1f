"""Initial weights do not depend on construction order: a task built before the Trainer (or after
other random draws) trains exactly as one built right after it, so a restart before the first
checkpoint starts from the same weights; a stop-at-20 / resume-to-40 run equals an unbroken one
on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from maru.train import Task, Trainer, seed_everything  # noqa: E402
from maru.train.seeding import settle_initial_weights  # noqa: E402


class Regression(Task):
    def __init__(self, hidden: int = 16, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=0.01)


def _data(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    return TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=gen))


def _loader() -> DataLoader[Any]:
    return DataLoader(_data(96, 0), batch_size=8, shuffle=True)


def _held_out(task: Regression) -> float:
    x, y = _data(256, 1).tensors
    task.eval()
    with torch.no_grad():
        return float(nn.functional.mse_loss(task.net(x).squeeze(-1), y))


def _trainer(**kwargs: Any) -> Trainer:
    return Trainer(progress=False, loggers=None, seed=7, log_every=5, **kwargs)


def test_task_built_before_or_after_the_trainer_trains_the_same() -> None:
    torch.randn(3)  # whatever the program drew before
    before = Regression(hidden=16)
    trainer = _trainer(max_steps=30)
    trainer.fit(before, _loader())
    after_trainer = _trainer(max_steps=30)
    torch.randn(5)  # random draws between the trainer and the task (making data, say)
    after = Regression(hidden=16)
    after_trainer.fit(after, _loader())
    right_after = _trainer(max_steps=30)
    plain = Regression(hidden=16)
    right_after.fit(plain, _loader())
    for p, q, r in zip(before.parameters(), after.parameters(), plain.parameters(), strict=True):
        assert torch.equal(p, q) and torch.equal(p, r)


def test_weights_changed_since_construction_are_kept() -> None:
    task = Regression()
    with torch.no_grad():
        task.net[0].weight.fill_(0.25)  # type: ignore[operator]  # e.g. loaded from a pretrained file
    assert not settle_initial_weights(task, 7)
    assert torch.all(task.net[0].weight == 0.25)
    opted_out = Regression()
    opted_out.rebuild_on_fit = False
    weights = opted_out.net[0].weight.detach().clone()  # type: ignore[operator]
    assert not settle_initial_weights(opted_out, 7)
    assert torch.equal(weights, opted_out.net[0].weight)
    seed_everything(7)
    fresh = Regression()
    assert not settle_initial_weights(fresh, 7)  # built right after seeding: nothing to do


def test_stop_at_20_resume_to_40_equals_unbroken_40_on_held_out(tmp_path: Path) -> None:
    torch.randn(2)
    whole = Regression()  # built before the trainer, as the examples used to
    _trainer(max_steps=40).fit(whole, _loader())
    torch.randn(7)
    first = Regression()
    _trainer(max_steps=20, checkpoint_dir=tmp_path, checkpoint_every=20).fit(first, _loader())
    resumed = Regression()  # a restarted process builds the task again
    result = _trainer(max_steps=40, checkpoint_dir=tmp_path, checkpoint_every=20).fit(resumed, _loader())
    assert result.resumed_from is not None and result.resumed_from.endswith("20")
    assert _held_out(resumed) == _held_out(whole)
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
