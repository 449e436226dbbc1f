"""A tiny MLP run for the launch tests, started by the local backend (under torchrun and
maru.launch.entry). Checkpoints go where ``MARU_CHECKPOINT_DIR`` says (the Trainer's default).

Fault injection (environment, rank ``MARU_TEST_RANK``, default 1), each once per ``--out`` folder:
``MARU_TEST_KILL_AT=n`` SIGKILLs the rank in its n-th training step; ``MARU_TEST_HANG_AT=n`` sleeps
forever there; ``MARU_TEST_FAIL_AT=n`` raises ValueError there (every time).
Writes ``events_rank<r>.jsonl`` (first step of each process: time and resumed step), and at the end
``rank<r>.pt`` (final weights) and ``summary<r>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train" / "scripts"))
from train_mlp import MLP, Recorder, make_data  # noqa: E402

from maru.train import ShardedDataset, TensorSource, Trainer  # noqa: E402


def _once(marker: Path) -> bool:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, json.dumps({"time": time.time()}).encode())
    os.close(fd)
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--ckpt-every", type=int, default=3)
    ap.add_argument("--step-sleep", type=float, default=0.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    target = int(os.environ.get("MARU_TEST_RANK", "1"))
    kill_at = int(os.environ.get("MARU_TEST_KILL_AT", "0"))
    hang_at = int(os.environ.get("MARU_TEST_HANG_AT", "0"))
    fail_at = int(os.environ.get("MARU_TEST_FAIL_AT", "0"))
    trainer = Trainer(
        max_steps=args.steps, log_every=2, checkpoint_every=args.ckpt_every, seed=7,
        progress=False, loggers=[Recorder()],
    )
    task = MLP(0.2, 0.03)
    original = task.training_step
    calls = {"n": 0}

    def step(batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        n = calls["n"]
        if n == 1:
            with open(out / f"events_rank{rank}.jsonl", "a") as fh:
                fh.write(json.dumps({
                    "time": time.time(), "step": trainer.step,
                    "world": int(os.environ.get("WORLD_SIZE", "1")),
                    "attempt": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
                }) + "\n")
        if rank == target:
            done = trainer.step
            if kill_at and n == kill_at and _once(out / "killed.marker"):
                (out / "killed.json").write_text(json.dumps({"time": time.time(), "step": done}))
                os.kill(os.getpid(), signal.SIGKILL)
            if hang_at and n == hang_at and _once(out / "hang.marker"):
                time.sleep(3600)
            if fail_at and n == fail_at:
                raise ValueError(f"injected failure at step {done}")
        if args.step_sleep:
            time.sleep(args.step_sleep)
        return original(batch)

    task.training_step = step  # type: ignore[method-assign]
    data = ShardedDataset(TensorSource(make_data()), batch_size=8, seed=3)
    result = trainer.fit(task, data)
    summary = {"step": result.step, "resumed_from": result.resumed_from,
               "world": int(os.environ.get("WORLD_SIZE", "1"))}
    (out / f"summary{rank}.json").write_text(json.dumps(summary))
    torch.save(task._final_state, out / f"rank{rank}.pt")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
