"""EarlyStopping and ModelCheckpoint under DDP (started by the train tests under torchrun).

The validation loss is scripted by step (5, 4, 3, then 3 for ever), the same on every rank, so the
decisions are known: with patience 3 the run stops at step 6. Each rank prints one JSON line
``{"rank", "step", "stopped", "best", "resumed_from", "wait"}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from maru.train import Task, Trainer
from maru.train.callbacks import EarlyStopping, ModelCheckpoint

SCHEDULE = {1: 5.0, 2: 4.0, 3: 3.0}  # the validation loss by step; 3.0 after


class Scripted(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, 1)

    def training_step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch).pow(2).mean()

    def validation_step(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.tensor(SCHEDULE.get(self.global_step, 3.0))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main() -> None:
    root = Path(sys.argv[1])
    stopper = EarlyStopping("val_loss", patience=3)
    saver = ModelCheckpoint(monitor="val_loss", save_top_k=1, filename="{step}-{val_loss:.1f}")
    trainer = Trainer(
        max_steps=50,
        val_every=1,
        log_every=1,
        checkpoint_dir=root / "ckpt",
        checkpoint_every=1,
        run_dir=root / "run",
        loggers=None,
        progress=False,
        callbacks=[stopper, saver],
    )
    generator = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 3, generator=generator) for _ in range(16)]
    result = trainer.fit(Scripted(), data, [torch.zeros(1)])
    print(
        json.dumps(
            {
                "rank": trainer.global_rank,
                "step": result.step,
                "stopped": stopper.stopped_step,
                "wait": stopper.wait_count,
                "best": Path(saver.best_model_path).name,
                "resumed_from": Path(result.resumed_from).name if result.resumed_from else None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
