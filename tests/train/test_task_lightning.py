"""A LightningModule's step signature ports: ``training_step(batch, batch_idx)`` and
``validation_step(batch, batch_idx)`` work, and ``self.global_step`` / ``self.current_epoch`` are
readable on the task. The arity is detected once per fit, not per step."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from maru.train import ShardedDataset, Task, TensorSource, Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from train_mlp import make_data  # noqa: E402


class LightningStyle(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 1)
        self.train_seen: list[tuple[int, int, int]] = []
        self.val_seen: list[tuple[int, int]] = []

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.train_seen.append((batch_idx, self.global_step, self.current_epoch))
        return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.val_seen.append((batch_idx, self.global_step))
        return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _batches(n: int) -> list[dict[str, Any]]:
    data = make_data(8 * n)
    return [{k: v[i : i + 8] for k, v in data.items()} for i in range(0, 8 * n, 8)]


def _trainer(**kwargs: Any) -> Trainer:
    return Trainer(progress=False, loggers=None, seed=1, log_every=1, **kwargs)


def test_training_and_validation_steps_get_batch_idx_and_the_position() -> None:
    task = LightningStyle()
    assert (task.global_step, task.current_epoch) == (0, 0)
    _trainer(max_epochs=2, val_every=4).fit(task, _batches(4), _batches(2))
    assert task.train_seen == [
        (0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 3, 0),
        (0, 4, 1), (1, 5, 1), (2, 6, 1), (3, 7, 1),
    ]
    # validation after steps 4 and 8 (and the final one), each pass counting its batches from 0
    assert task.val_seen[:4] == [(0, 4), (1, 4), (0, 8), (1, 8)]
    assert [idx for idx, _ in task.val_seen] == [0, 1] * (len(task.val_seen) // 2)
    assert (task.global_step, task.current_epoch) == (8, 2)  # still readable after fit


def test_batch_idx_counts_micro_batches_with_gradient_accumulation() -> None:
    task = LightningStyle()
    _trainer(max_steps=2, grad_accum=2).fit(task, _batches(4))
    assert task.train_seen == [(0, 0, 0), (1, 0, 0), (2, 1, 0), (3, 1, 0)]


def test_batch_idx_continues_after_a_mid_epoch_resume(tmp_path: Path) -> None:
    def data() -> ShardedDataset:
        return ShardedDataset(TensorSource(make_data(48)), batch_size=8, seed=3)

    _trainer(max_steps=2, checkpoint_dir=tmp_path, checkpoint_every=2).fit(LightningStyle(), data())
    task = LightningStyle()
    _trainer(max_steps=4, checkpoint_dir=tmp_path, checkpoint_every=2).fit(task, data())
    assert [idx for idx, _, _ in task.train_seen] == [2, 3]
    assert [step for _, step, _ in task.train_seen] == [2, 3]


def test_the_one_argument_form_still_works_and_arity_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain(LightningStyle):
        def training_step(self, batch):  # type: ignore[no-untyped-def, override]
            self.train_seen.append((-1, self.global_step, self.current_epoch))
            return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    reads: list[object] = []
    real = inspect.signature

    def counting(fn: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        reads.append(fn)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting)
    task = Plain()
    _trainer(max_steps=6).fit(task, _batches(3))
    assert [step for _, step, _ in task.train_seen] == [0, 1, 2, 3, 4, 5]
    assert [epoch for _, _, epoch in task.train_seen] == [0, 0, 0, 1, 1, 1]
    step_reads = [fn for fn in reads if getattr(fn, "__name__", "") in ("training_step", "validation_step")]
    assert len(step_reads) <= 2  # once per step method per fit, not per step
