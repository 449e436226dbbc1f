"""What keeping the data's place costs, and what worker processes buy, on CPU.

    .venv/bin/python bench/train_data.py [--repeats N]

1. Resuming late in an epoch: a shuffling DataLoader of 320,000 samples in batches of 32
   (10,000 batches) resumed at batch 9,900 by maru's ResumableLoader (the epoch's order redrawn
   from the recorded generator states, 9,900 index lists skipped, no sample read: the dataset
   counts its reads) beside re-reading the 9,900 batches (what a loader without index-level
   skipping does), with and without 2 workers.
2. ShardedDataset batches per second in the main process and behind 1 and 2 workers, for a JSONL
   source (a parse per sample) and a tensor source (one indexing read per batch). Repeats are
   interleaved; each figure is the median.

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from maru.train.data import JsonlSource, ShardedDataset, TensorSource, resumable  # noqa: E402

SAMPLES, BATCH, RESUME_AT = 320_000, 32, 9_900


class Counted(Dataset):  # type: ignore[type-arg]
    """Sample i is a small tensor; every read is counted (in this process)."""

    def __init__(self, n: int) -> None:
        self.n, self.reads = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        self.reads += 1
        return torch.full((16,), float(i))


def _loader(dataset: Counted, workers: int) -> DataLoader:  # type: ignore[type-arg]
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers)


def resume_cost(workers: int) -> dict[str, Any]:
    torch.manual_seed(0)
    data = resumable(_loader(Counted(SAMPLES), workers))
    epoch = iter(data)
    t0 = time.perf_counter()
    seen = [next(epoch) for _ in range(RESUME_AT)][-1]
    reread_s = time.perf_counter() - t0
    state = data.state_dict()
    expected = next(epoch)
    del epoch
    t0 = time.perf_counter()
    next(iter(resumable(_loader(Counted(SAMPLES), workers))))
    start_s = time.perf_counter() - t0  # an epoch's first batch, nothing to skip
    dataset = Counted(SAMPLES)
    fresh = resumable(_loader(dataset, workers))
    fresh.load_state_dict(state)
    t0 = time.perf_counter()
    first = next(iter(fresh))
    resume_s = time.perf_counter() - t0
    assert torch.equal(first, expected) and not torch.equal(first, seen)
    reads = dataset.reads if workers == 0 else None  # read in the workers otherwise
    return {
        "workers": workers,
        "resume_s": resume_s,
        "start_s": start_s,
        "reread_s": reread_s,
        "reads_on_resume": reads,
    }


def _jsonl(folder: Path, n: int = 20_000) -> Path:
    path = folder / "tokens.jsonl"
    g = torch.Generator().manual_seed(0)
    with path.open("w") as f:
        for i in range(n):
            ids = torch.randint(0, 32_000, (256,), generator=g).tolist()
            f.write(json.dumps({"id": i, "tokens": ids}) + "\n")
    return path


def batches_per_s(make: Any, workers: int) -> float:
    ds = make()
    data = ds.loader(num_workers=workers, persistent_workers=False) if workers else ds
    t0 = time.perf_counter()
    count = sum(1 for _ in data)
    return count / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    figures: dict[str, Any] = {"resume": [resume_cost(w) for w in (0, 2)]}
    for row in figures["resume"]:
        print(
            f"resume at {RESUME_AT}/{SAMPLES // BATCH}, {row['workers']} workers: "
            f"{row['resume_s']:.3f} s to the next batch (an epoch's first: {row['start_s']:.3f} s; "
            f"samples read: {row['reads_on_resume']}); re-reading {RESUME_AT} batches: "
            f"{row['reread_s']:.2f} s"
        )
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = _jsonl(Path(tmp))
        tokens = torch.randint(0, 32_000, (20_000, 256))
        sources = {
            "jsonl": lambda: ShardedDataset(JsonlSource(jsonl), batch_size=64, seed=1),
            "tensor": lambda: ShardedDataset(
                TensorSource({"tokens": tokens}), batch_size=64, seed=1
            ),
        }
        runs: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # interleaved
            for name, make in sources.items():
                for workers in (0, 1, 2):
                    runs.setdefault(f"{name}/{workers}", []).append(batches_per_s(make, workers))
    figures["batches_per_s"] = {key: statistics.median(v) for key, v in runs.items()}
    for key, value in figures["batches_per_s"].items():
        name, workers = key.split("/")
        base = figures["batches_per_s"][f"{name}/0"]
        print(f"{name:6s} {workers} workers: {value:8.1f} batches/s ({value / base:.2f}x in-process)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
