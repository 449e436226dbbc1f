"""One benchmark run of an MLP training loop: ``raw`` (hand-written PyTorch), ``maru`` (Trainer)
or ``lightning``; one process, or several under torchrun (DDP, gloo on CPU).

    python bench/train_workers/loop.py MODE STEPS WARMUP

The model records the clock at the start of every training step, the same way in all three, so
the figures measure the same thing: start-up is from ``BENCH_T0`` (set by the parent just before
it started this process, or torchrun) to the end of the first step; steady state is steps/s over
the steps after ``WARMUP``. Rank 0 prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

IN, HIDDEN, CLASSES, BATCH, SAMPLES = 512, 1024, 10, 64, 64 * 128
LOG_EVERY = 10


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, CLASSES),
        )
        self.stamps: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        return self.net(x)


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(SAMPLES, IN, generator=g), torch.randint(0, CLASSES, (SAMPLES,), generator=g)


class RankBatches:
    """This rank's batches of a seeded shuffle: what a hand-written DDP loop would do."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rank: int, world: int) -> None:
        self.x, self.y, self.rank, self.world, self.epoch = x, y, rank, world, 0

    def __len__(self) -> int:
        return len(self.x) // (BATCH * self.world)

    def __iter__(self):  # type: ignore[no-untyped-def]
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.epoch))
        self.epoch += 1
        mine = order[self.rank :: self.world]
        for i in range(len(self)):
            idx = mine[i * BATCH : (i + 1) * BATCH]
            yield self.x[idx], self.y[idx]


def run_raw(model: MLP, steps: int, rank: int, world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        step_model: nn.Module = nn.parallel.DistributedDataParallel(model)
    else:
        step_model = model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = RankBatches(*make_data(), rank, world)
    step = 0
    while step < steps:
        for x, y in data:
            loss = F.cross_entropy(step_model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % LOG_EVERY == 0:
                loss.item()
            if step == steps:
                break
    model.stamps.append(time.perf_counter())
    if world > 1:
        dist.destroy_process_group()


def run_maru(model: MLP, steps: int, rank: int, world: int) -> None:
    from maru.train import ShardedDataset, Task, TensorSource, Trainer

    class Classify(Task):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch):  # type: ignore[no-untyped-def]
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    data = ShardedDataset(TensorSource(make_data()), batch_size=BATCH)
    trainer = Trainer(
        max_steps=steps, strategy="ddp" if world > 1 else "auto", loggers=None, progress=False,
        log_every=LOG_EVERY,
    )
    trainer.fit(Classify(), data)
    model.stamps.append(time.perf_counter())


def run_lightning(model: MLP, steps: int, rank: int, world: int) -> None:
    import logging
    import warnings

    import lightning as L

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Classify(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", devices=world,
        strategy="ddp" if world > 1 else "auto", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        log_every_n_steps=LOG_EVERY,
    )
    trainer.fit(Classify(), train_dataloaders=RankBatches(*make_data(), rank, world))
    model.stamps.append(time.perf_counter())


def main() -> None:
    mode, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0_wall = float(os.environ["BENCH_T0"])
    t0 = time.perf_counter() - (time.time() - t0_wall)  # BENCH_T0 on the perf_counter clock
    torch.set_num_threads(1)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    torch.manual_seed(0)
    model = MLP()
    {"raw": run_raw, "maru": run_maru, "lightning": run_lightning}[mode](model, steps, rank, world)
    stamps = model.stamps  # start of each step, then the end of the last one
    if rank == 0:
        steady = (steps - warmup) / (stamps[steps] - stamps[warmup])
        print(json.dumps({"startup_s": stamps[1] - t0, "steps_per_s": steady}), flush=True)


if __name__ == "__main__":
    main()
