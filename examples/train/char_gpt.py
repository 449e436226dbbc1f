"""A small character-level GPT trained on maru's own documentation.

    python examples/train/char_gpt.py                          # tiny model, ~30 s on a CPU
    python examples/train/char_gpt.py --layers 6 --dim 384 --heads 6 --block 256 --steps 5000 \
        --precision bf16-mixed                                  # on a GPU
    torchrun --nproc-per-node 2 examples/train/char_gpt.py --strategy fsdp   # or ddp, tp

Read it top to bottom: the text and its vocabulary, the model (embeddings, blocks of causal
self-attention and an MLP, a language-model head), the Task that trains it — including the
tensor-parallel plan and FLOPs count the Trainer uses for ``--strategy tp`` and MFU — then the
run itself and a sample of generated text.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from maru.train import ShardedDataset, Task, TensorSource, Trainer
from maru.train.dist import destroy_process_group, init_process_group
from maru.train.metrics import transformer_flops_per_token

REPO = Path(__file__).resolve().parents[2]


# -- data: every character of the README and docs/*.md --------------------------------------------


def load_text() -> str:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return "\n\n".join(f.read_text(encoding="utf-8") for f in files if f.exists())


class CharVocab:
    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


def windows(ids: torch.Tensor, block: int, stride: int) -> torch.Tensor:
    """Rows of ``block + 1`` tokens: a row's first ``block`` are the input, its last ``block``
    (shifted by one) the targets."""
    return ids.unfold(0, block + 1, stride).contiguous()


# -- model ------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Multi-head attention where each position sees only the positions before it.

    q, k and v are separate projections so a tensor-parallel plan can split each by heads
    (column-wise) and ``proj`` by its input (row-wise): every rank then owns whole heads."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        # -1: the heads on this rank (all of them, or heads / tp under tensor parallel)
        q, k, v = (p(x).view(B, T, -1, self.head_dim).transpose(1, 2) for p in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 4 * dim, bias=False)
        self.proj = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, block: int, layers: int, heads: int, dim: int) -> None:
        super().__init__()
        self.block = block
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Embedding(block, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # residual projections scaled by depth (GPT-2)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, new_tokens: int, temperature: float = 0.8, top_k: int = 10) -> torch.Tensor:
        for _ in range(new_tokens):
            logits = self(ids[:, -self.block :])[:, -1, :] / temperature
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
            ids = torch.cat([ids, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
        return ids


# -- the task: loss, optimizer, parallel plan, FLOPs ----------------------------------------------


class CharGPT(Task):
    def __init__(self, model: GPT, lr: float, heads: int, steps: int) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.heads = heads
        self.steps = steps

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = self.model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def training_step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.loss(batch)

    def validation_step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.loss(batch)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, betas=(0.9, 0.95), weight_decay=0.1)
        warmup = max(self.steps // 20, 1)

        def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 10%
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(self.steps - warmup, 1), 1.0)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def parallelize(self, mesh: torch.distributed.device_mesh.DeviceMesh) -> None:
        """Megatron-style tensor parallel inside each block; embeddings and head stay replicated."""
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        if self.heads % mesh.size():
            raise ValueError(f"{self.heads} heads cannot be split over {mesh.size()} ranks")
        plan = {
            "attn.q": ColwiseParallel(),
            "attn.k": ColwiseParallel(),
            "attn.v": ColwiseParallel(),
            "attn.proj": RowwiseParallel(),
            "mlp.fc": ColwiseParallel(),
            "mlp.proj": RowwiseParallel(),
        }
        for block in self.model.blocks:
            parallelize_module(block, mesh, plan)

    def fsdp_units(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def tokens_in(self, batch: torch.Tensor) -> int:
        return batch.shape[0] * (batch.shape[1] - 1)

    def flops_per_step(self, batch: torch.Tensor) -> float:
        m = self.model
        n_params = sum(p.numel() for p in m.parameters()) - m.pos_emb.weight.numel()
        dim = m.tok_emb.weight.shape[1]
        seq = batch.shape[1] - 1
        per_token = transformer_flops_per_token(n_params, len(m.blocks), self.heads, dim // self.heads, seq)
        return per_token * self.tokens_in(batch)


# -- the run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block", type=int, default=64, help="context length in characters")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--strategy", default="auto", help="auto, ddp, fsdp, tp or dp_tp")
    parser.add_argument("--tp-size", type=int, default=None)
    parser.add_argument("--precision", default="32", help="32, bf16-mixed or 16-mixed")
    parser.add_argument("--sample-chars", type=int, default=200)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    text = load_text()
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    split = int(0.9 * len(ids))
    train_rows = windows(ids[:split], args.block, stride=args.block // 2)
    val_rows = windows(ids[split:], args.block, stride=args.block)
    train = ShardedDataset(TensorSource(train_rows), batch_size=args.batch_size, seed=args.seed)
    val = ShardedDataset(TensorSource(val_rows), batch_size=args.batch_size, shuffle=False)

    torch.manual_seed(args.seed)  # every rank builds the same initial weights
    model = GPT(len(vocab), args.block, args.layers, args.heads, args.dim)
    task = CharGPT(model, args.lr, args.heads, args.steps)
    probe = val_rows[: args.batch_size]
    with torch.no_grad():
        loss_before = task.loss(probe).item()

    # Under torchrun, start the process group here rather than in fit(): the Trainer leaves a group
    # it did not start, so the sharded (FSDP) or split (TP) model still works for sampling below.
    owns_group = init_process_group()
    trainer = Trainer(
        max_steps=args.steps,
        strategy=args.strategy,
        tp_size=args.tp_size,
        precision=args.precision,
        clip_grad_norm=1.0,
        val_every=max(args.steps // 3, 1),
        run_dir=args.run_dir,
        loggers="auto" if args.run_dir else None,
        progress=not args.no_progress,
        seed=args.seed,
    )
    trainer.fit(task, train, val_data=val)

    device = next(task.parameters()).device
    with torch.no_grad():
        loss_after = task.loss(probe.to(device)).item()
        torch.manual_seed(args.seed)
        start = vocab.encode("\n").view(1, 1).to(device)
        sample = vocab.decode(model.generate(start, args.sample_chars)[0].tolist())
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if rank == 0:
        print(f"chars: {len(ids)} ({len(vocab)} distinct); params: {sum(p.numel() for p in model.parameters())}")
        print(f"validation loss: {loss_before:.3f} before training, {loss_after:.3f} after")
        print("sample:", sample, sep="\n")
    if owns_group:
        del task, model, trainer  # the sharded/split weights hold the group: free them first
        destroy_process_group()


if __name__ == "__main__":
    main()
