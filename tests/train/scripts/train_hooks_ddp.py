"""Two ranks (under torchrun): ``self.log(..., sync_dist=True)`` is a mean over ranks in
validation, in training epochs and at logging steps; without it each rank keeps its own value;
a callback acting on reduced metrics stops every rank at the same step; ``test`` after ``fit``
reuses the run's placement. Writes ``hooks{rank}.json`` into ``--out``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from maru.train import Callback, Task, Trainer


class RankTask(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)

    def _loss(self, batch):  # type: ignore[no-untyped-def]
        return nn.functional.mse_loss(self.net(batch).squeeze(-1), batch.sum(-1))

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        rank = float(torch.distributed.get_rank())
        self.log("rank_step", rank, sync_dist=True)
        self.log("rank_epoch", rank, on_step=False, on_epoch=True, sync_dist=True)
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        rank = float(torch.distributed.get_rank())
        self.log("val_rank_synced", rank + 1, sync_dist=True)
        self.log("val_rank_local", rank + 1)
        return self._loss(batch)

    def test_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.log("test_rank", float(torch.distributed.get_rank()), sync_dist=True)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.01)


class StopAfterTwoValidations(Callback):
    def __init__(self) -> None:
        self.seen = 0

    def on_validation_end(self, trainer, task):  # type: ignore[no-untyped-def]
        self.seen += 1
        if self.seen == 2 and trainer.callback_metrics["val_rank_synced"] == 1.5:
            trainer.should_stop = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 2, generator=gen) for _ in range(6)]
    trainer = Trainer(
        max_epochs=5, val_every=2, log_every=2, loggers=None, progress=False,
        callbacks=[StopAfterTwoValidations()],
    )
    task = RankTask()
    result = trainer.fit(task, batches, batches[:2])
    metrics = dict(trainer.callback_metrics)
    (test,) = trainer.test(task, batches[:3])
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else trainer.global_rank
    out = {"step": result.step, "metrics": metrics, "test": test}
    (args.out / f"hooks{rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
