"""The scale test's block model trained with FSDP2 (under torchrun), with or without activation
checkpointing per block. Writes this rank's full weights to ``--out/rank{r}.pt`` and a summary
(how many blocks were checkpointed)."""

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


class Recording(Stack):
    def on_fit_end(self) -> None:
        self._final_state = full_state(self)  # collective for DTensors: before teardown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategy", default="fsdp")
    ap.add_argument("--checkpointing", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = Recording()
    trainer = Trainer(
        max_steps=4, strategy=args.strategy, **QUIET,
        activation_checkpointing=Block if args.checkpointing else None,
    )
    trainer.fit(task, data())
    rank = trainer.global_rank
    wrapped = sum("CheckpointWrapper" in type(m).__name__ for m in task.modules())
    torch.save(task._final_state, out / f"rank{rank}.pt")
    (out / f"summary{rank}.json").write_text(json.dumps({"wrapped": wrapped}))


if __name__ == "__main__":
    main()
