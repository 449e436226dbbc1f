"""The scale test's block model trained under torchrun — FSDP2 with or without activation
checkpointing per block, or DDP with or without gradients as bucket views. Writes this rank's
full weights to ``--out/rank{r}.pt`` and a summary (how many blocks were checkpointed)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_scale import QUIET, Block, Stack, data  # noqa: E402
from train_mlp import full_state  # noqa: E402

from maru.train import Trainer  # noqa: E402
from maru.train.strategies import DDP  # noqa: E402


class Recording(Stack):
    def on_fit_end(self) -> None:
        self._final_state = full_state(self)  # collective for DTensors: before teardown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategy", default="fsdp")
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--copy-buckets", action="store_true", help="DDP without bucket views")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = Recording()
    trainer = Trainer(
        max_steps=4,
        strategy=DDP(gradient_as_bucket_view=False) if args.copy_buckets else args.strategy,
        **QUIET,
        activation_checkpointing=Block if args.checkpointing else None,
    )
    trainer.fit(task, data())
    rank = trainer.global_rank
    wrapped = sum("CheckpointWrapper" in type(m).__name__ for m in task.modules())
    torch.save(task._final_state, out / f"rank{rank}.pt")
    (out / f"summary{rank}.json").write_text(json.dumps({"wrapped": wrapped}))


if __name__ == "__main__":
    main()
