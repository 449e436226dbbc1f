"""The Slurm tests' training job: a tiny regression run through maru's Trainer under torchrun,
checkpointing to ``$MARU_CHECKPOINT_DIR``. Rank 0 prints one line per step with a wall-clock time
(``maru-test step=N t=...``) so the tests can see where a run was preempted and where the next one
resumed; ``--sleep`` slows each step so a preemption lands mid-run.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from maru.train import ShardedDataset, Task, TensorSource, Trainer


class Regression(Task):
    def __init__(self, sleep: float, fail_at: int = 0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        self.sleep = sleep
        self.fail_at = fail_at
        self.calls = 0

    def training_step(self, batch):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_at:  # a bug: every run fails at the same step
            raise ValueError(f"injected bug in training step {self.calls}")
        if self.sleep:
            time.sleep(self.sleep)
        return nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


class StepPrinter:
    """A trainer logger (rank 0 only): one line per logged step."""

    def log_metrics(self, metrics, step):  # type: ignore[no-untyped-def]
        if "loss" in metrics:
            print(f"maru-test step={step} loss={metrics['loss']:.4f} t={time.time():.3f}", flush=True)

    def log_hparams(self, params):  # type: ignore[no-untyped-def]
        pass

    def finalize(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ckpt-every", type=int, default=5)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--fail-at", type=int, default=0)
    args = ap.parse_args()
    ckpt = os.environ.get("MARU_CHECKPOINT_DIR")
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        print(
            f"maru-test start world={os.environ.get('WORLD_SIZE')} "
            f"restart={os.environ.get('SLURM_RESTART_COUNT', '0')} t={time.time():.3f}",
            flush=True,
        )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = x.sum(dim=1)
    data = ShardedDataset(TensorSource({"x": x, "y": y}), batch_size=8, seed=1)
    trainer = Trainer(
        max_steps=args.steps,
        log_every=1,
        checkpoint_dir=ckpt,
        checkpoint_every=args.ckpt_every if ckpt else None,
        seed=3,
        progress=False,
        loggers=[StepPrinter()],
    )
    try:
        result = trainer.fit(Regression(args.sleep, args.fail_at), data)
    except SystemExit as exc:  # Preempted: checkpoint saved, exit 143
        if rank == 0:
            print(f"maru-test stopped: {exc}", flush=True)
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    if rank == 0:
        print(f"maru-test done step={result.step} resumed_from={result.resumed_from}", flush=True)


if __name__ == "__main__":
    main()
