"""Fit y = 2x + 1 from noisy samples: the smallest complete maru training run.

    python -m maru.demo.linear_regression            # 300 steps, a few seconds on CPU
    python -m maru.demo.linear_regression --steps 2000 --run-dir runs/linreg
    torchrun --nproc-per-node 2 -m maru.demo.linear_regression --strategy ddp

(``examples/train/linear_regression.py`` runs this module; ``maru demo`` runs it under torchrun.)

A ``Task`` is an ``nn.Module`` that says how to compute the loss of a batch and which optimizer
to use; the ``Trainer`` does the rest (devices, processes, logging, checkpoints).
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from torch import nn

from maru.train import ShardedDataset, Task, TensorSource, Trainer


class LinearRegression(Task):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.lr = lr

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self.linear(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x uniform in [-1, 1], y = 2x + 1 plus Gaussian noise (σ = 0.1)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=generator) * 2 - 1
    y = 2 * x + 1 + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--run-dir", default=None, help="where metrics.csv goes (none: no logs)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    data = ShardedDataset(TensorSource(make_data(args.samples, seed=0)), batch_size=args.batch_size)
    trainer = Trainer(
        max_steps=args.steps,
        strategy=args.strategy,
        run_dir=args.run_dir,
        loggers="auto" if args.run_dir else None,
        progress=not args.no_progress,
    )
    task = LinearRegression(args.lr)  # built right after the (seeding) Trainer: see maru.train.seeding
    trainer.fit(task, data)

    w, b = task.linear.weight.item(), task.linear.bias.item()
    if int(os.environ.get("RANK", "0")) == 0:  # every rank holds the same weights; one prints
        print(f"learned: w = {w:.3f}, b = {b:.3f}  (true: w = 2, b = 1)")


if __name__ == "__main__":
    main()
