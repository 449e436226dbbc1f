"""A tiny MLP run that SIGTERMs one of its ranks (``MARU_TEST_TERM_RANK``) in step
``MARU_TEST_TERM_AT``, with ``log_every`` far away: the run must still stop at the next step.
Writes ``stopped<r>.json`` (the step and whether it was preempted) to ``--out``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train" / "scripts"))
from train_mlp import MLP, make_data  # noqa: E402

from maru.train import ShardedDataset, TensorSource, Trainer  # noqa: E402
from maru.train.dist import Preempted  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    rank = int(os.environ.get("RANK", "0"))
    term_rank = int(os.environ.get("MARU_TEST_TERM_RANK", "1"))
    term_at = int(os.environ.get("MARU_TEST_TERM_AT", "5"))
    trainer = Trainer(max_steps=400, log_every=100, seed=7, progress=False)
    task = MLP(0.0, 0.03)
    original = task.training_step

    def step(batch):  # type: ignore[no-untyped-def]
        if rank == term_rank and trainer.step == term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.02)
        return original(batch)

    task.training_step = step  # type: ignore[method-assign]
    data = ShardedDataset(TensorSource(make_data()), batch_size=8, seed=3)
    try:
        trainer.fit(task, data)
        stopped = {"step": trainer.step, "preempted": False}
    except Preempted as exc:
        stopped = {"step": exc.step, "preempted": True}
    (out / f"stopped{rank}.json").write_text(json.dumps(stopped))


if __name__ == "__main__":
    main()
