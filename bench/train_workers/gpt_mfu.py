"""GPU only: bf16 MFU of a ~1.1B-parameter GPT (the char_gpt example's model, 18 blocks of width
2048) trained by the maru Trainer with FSDP2 and every block compiled (``torch.compile``).

    python bench/train_workers/gpt_mfu.py            # or under torchrun for several GPUs

Prints one JSON line: parameters, tokens/s per GPU and MFU of the last logging window.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "train"))
from char_gpt import GPT, CharGPT  # noqa: E402

from maru.train import ShardedDataset, TensorSource, Trainer  # noqa: E402

VOCAB, BLOCK, LAYERS, HEADS, DIM = 50304, 2048, 18, 16, 2048
BATCH, STEPS = 4, 40


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    model = GPT(VOCAB, BLOCK, LAYERS, HEADS, DIM)
    n_params = sum(p.numel() for p in model.parameters())
    for block in model.blocks:
        block.compile()
    task = CharGPT(model, lr=3e-4, heads=HEADS, steps=STEPS)
    tokens = torch.randint(0, VOCAB, (BATCH * (STEPS + 8), BLOCK + 1))
    data = ShardedDataset(TensorSource(tokens), batch_size=BATCH)
    trainer = Trainer(
        max_steps=STEPS, strategy="fsdp", precision="bf16-mixed", loggers=None, progress=False,
        log_every=10,
    )
    result = trainer.fit(task, data)
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        m = result.metrics
        print(json.dumps({
            "gpu": torch.cuda.get_device_name(),
            "params": n_params,
            "tokens_per_s": m.get("tokens_per_s"),
            "mfu": m.get("mfu"),
            "loss": result.loss,
        }), flush=True)


if __name__ == "__main__":
    main()
