"""Linear regression through maru's Trainer on ordinary data pipelines — a shuffling
``torch.utils.data.DataLoader`` (with or without workers), a ``ShardedDataset`` behind workers, a
resumable ``IterableDataset``, a Hugging Face dataset from local files — started by the data
tests, often twice (stop at one step, resume to another) and under torchrun.

Writes ``--out/rank{r}.pt`` (final weights) and ``--out/summary{r}.json`` (the sample ids each
step saw, the loss of every step, warnings raised).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from maru.train import Task, Trainer

N = 96


def make_xy(n: int = N) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return torch.arange(n), x, y


class Linear(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.seen: list[list[int]] = []

    def training_step(self, batch: Any) -> torch.Tensor:
        idx, x, y = (batch["idx"], batch["x"], batch["y"]) if isinstance(batch, dict) else batch
        self.seen.append(torch.as_tensor(idx).tolist())
        return nn.functional.mse_loss(self.net(torch.as_tensor(x).float()).squeeze(-1), torch.as_tensor(y).float())

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class Losses:
    def __init__(self) -> None:
        self.rows: list[float] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if "loss" in metrics:
            self.rows.append(metrics["loss"])

    def log_hparams(self, params: Any) -> None:
        pass

    def finalize(self) -> None:
        pass


class Counting(IterableDataset):  # type: ignore[type-arg]
    """Samples 0..n-1 in an order shuffled per pass, with the state_dict protocol."""

    def __init__(self, n: int = N, resumable: bool = True) -> None:
        self.idx, self.x, self.y = make_xy(n)
        self.position = 0
        self.passes = 0
        if not resumable:
            self.state_dict = None  # type: ignore[assignment]

    def __iter__(self) -> Any:
        order = torch.randperm(len(self.idx), generator=torch.Generator().manual_seed(self.passes))
        while self.position < len(order):
            i = int(order[self.position])
            self.position += 1
            yield {"idx": i, "x": self.x[i], "y": self.y[i]}
        self.position, self.passes = 0, self.passes + 1

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "passes": self.passes}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position, self.passes = state["position"], state["passes"]


class InOrder:
    """A custom batch sampler: batches of 8 in order."""

    def __iter__(self) -> Any:
        return (list(range(i, i + 8)) for i in range(0, N, 8))

    def __len__(self) -> int:
        return N // 8


def hf_dataset(folder: Path, streaming: bool) -> Any:
    import datasets

    idx, x, y = make_xy()
    path = folder / "data.jsonl"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"idx": int(i), "x": x[i].tolist(), "y": float(y[i])} for i in idx]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return datasets.load_dataset(
        "json", data_files=str(path), split="train", streaming=streaming, cache_dir=str(folder / "cache")
    )


def build_data(args: argparse.Namespace, out: Path) -> Any:
    idx, x, y = make_xy()
    workers = {"num_workers": args.workers, "persistent_workers": args.workers > 0 and args.persistent}
    if args.data == "loader":
        return DataLoader(TensorDataset(idx, x, y), batch_size=8, shuffle=args.shuffle, **workers)
    if args.data == "batch_sampler":
        return DataLoader(TensorDataset(idx, x, y), batch_sampler=InOrder())
    if args.data == "sharded":
        from maru.train.data import ShardedDataset, TensorSource

        ds = ShardedDataset(TensorSource({"idx": idx, "x": x, "y": y}), batch_size=8, seed=3)
        return ds.loader(num_workers=args.workers) if args.workers else ds
    if args.data in ("iterable", "iterable_plain"):
        return DataLoader(Counting(resumable=args.data == "iterable"), batch_size=8, **workers)
    if args.data in ("hf", "hf_stream"):
        from maru.train.data import hf_loader

        ds = hf_dataset(out.parent / "hf", streaming=args.data == "hf_stream")
        return hf_loader(ds, batch_size=8, shuffle=args.shuffle, seed=11, **workers)
    raise SystemExit(f"unknown --data {args.data}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="loader")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--persistent", action="store_true")
    ap.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    ap.add_argument("--ckpt-dir", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    losses = Losses()
    trainer = Trainer(
        max_steps=args.steps,
        log_every=1,
        checkpoint_dir=args.ckpt_dir,
        seed=7,
        progress=False,
        loggers=[losses],
    )
    task = Linear()  # built after the Trainer, which seeds
    data = build_data(args, out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = trainer.fit(task, data)
    summary = {
        "step": result.step,
        "resumed_from": result.resumed_from,
        "seen": task.seen,
        "losses": losses.rows,
        "warnings": [str(w.message) for w in caught],
    }
    (out / f"summary{rank}.json").write_text(json.dumps(summary))
    torch.save({k: v.detach().clone() for k, v in task.net.state_dict().items()}, out / f"rank{rank}.pt")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
