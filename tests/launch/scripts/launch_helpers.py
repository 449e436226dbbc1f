"""Shared by the local-backend tests: a job spec for ft_train.py and readers of what it wrote."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from maru.launch.local import LocalBackend
from maru.launch.spec import JobSpec, parse_spec

SCRIPT = Path(__file__).parent / "ft_train.py"


def make_spec(out: Path, name: str = "ft", *, nproc: int = 2, nnodes: str = "1",
              env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              **fields: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": name,
        "entrypoint": {"script": str(SCRIPT), "args": ["--out", str(out), *args]},
        "nnodes": nnodes,
        "nproc_per_node": nproc,
        "max_restarts": 1,
        "checkpoint_dir": str(out / "ckpt"),
        "hang_timeout_s": 60,
        "env": {"OMP_NUM_THREADS": "1", **(env or {})},
    }
    data.update(fields)
    return parse_spec(data)


def backend(root: Path, **options: Any) -> LocalBackend:
    return LocalBackend(root=root, **options)


def events(out: Path, rank: int = 0) -> list[dict[str, Any]]:
    path = out / f"events_rank{rank}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(out: Path, rank: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / f"summary{rank}.json").read_text())
    return data


def weights(out: Path, rank: int = 0) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = torch.load(out / f"rank{rank}.pt")
    return state


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wait_until(predicate: Any, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def checkpoints(out: Path) -> list[int]:
    folder = out / "ckpt"
    return sorted(int(p.name[5:]) for p in folder.glob("step_*") if p.name[5:].isdigit())


def report(name: str, **figures: Any) -> None:
    """Print a measured figure (shown with pytest -s) and append it to $MARU_FT_REPORT if set."""
    line = json.dumps({"case": name, **figures})
    print(line)
    target = os.environ.get("MARU_FT_REPORT")
    if target:
        with open(target, "a") as fh:
            fh.write(line + "\n")
