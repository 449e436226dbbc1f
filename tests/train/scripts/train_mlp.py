"""A tiny MLP regression run through maru's Trainer, started by the train tests (often under
torchrun). Writes the final full weights of this rank to ``--out/rank{r}.pt`` and a JSON summary.

``MARU_TEST_KILL_AT`` = n: SIGKILL this process (rank 0 only) in its n-th training_step call,
once (a marker file in --out stops a restarted run from killing itself again).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

from maru.train import ShardedDataset, Task, TensorSource, Trainer


class MLP(Task):
    def __init__(self, dropout: float, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 1)
        )
        self.lr = lr
        self.calls = 0
        self.seen: list[list[int]] = []
        self.kill_at = int(os.environ.get("MARU_TEST_KILL_AT", "0"))
        self.marker: Path | None = None

    def training_step(self, batch):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.kill_at and self.calls == self.kill_at and self.marker and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        self.seen.append(batch["idx"].tolist())
        pred = self.net(batch["x"]).squeeze(-1)
        loss = nn.functional.mse_loss(pred, batch["y"])
        self.log("pred_mean", pred.detach().mean())
        return loss

    def validation_step(self, batch):  # type: ignore[no-untyped-def]
        pred = self.net(batch["x"]).squeeze(-1)
        return nn.functional.mse_loss(pred, batch["y"])

    def on_fit_end(self) -> None:
        self._final_state = full_state(self)  # collective for DTensors: before teardown

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.7)
        return opt, sched

    def parallelize(self, mesh):  # type: ignore[no-untyped-def]
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        parallelize_module(self.net, mesh, {"0": ColwiseParallel(), "3": RowwiseParallel()})


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def log_metrics(self, metrics, step):  # type: ignore[no-untyped-def]
        if "loss" in metrics:
            self.rows.append(dict(metrics, step=step))

    def log_hparams(self, params):  # type: ignore[no-untyped-def]
        pass

    def finalize(self) -> None:
        pass


def make_data(n: int = 256, seed: int = 123) -> dict[str, torch.Tensor]:
    w = torch.randn(8, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = x @ w + 0.1 * torch.randn(n, generator=g)
    return {"x": x, "y": y, "idx": torch.arange(n)}


def full_state(task: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in task.state_dict().items():
        if hasattr(value, "full_tensor"):
            value = value.full_tensor()
        out[name] = value.detach().clone().cpu()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--ckpt-dir", default=None)
    ap.add_argument("--ckpt-every", type=int, default=None)
    ap.add_argument("--tp-size", type=int, default=None)
    ap.add_argument("--precision", default="32")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--val", action="store_true")
    ap.add_argument("--sigterm-at", type=int, default=0, help="rank 0 sends itself SIGTERM in this call")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recorder = Recorder()
    trainer = Trainer(
        max_steps=args.steps,
        strategy=args.strategy,
        tp_size=args.tp_size,
        precision=args.precision,
        grad_accum=args.grad_accum,
        clip_grad_norm=args.clip,
        log_every=2,
        val_every=4 if args.val else None,
        checkpoint_dir=args.ckpt_dir,
        checkpoint_every=args.ckpt_every,
        seed=7,
        progress=False,
        loggers=[recorder],
    )
    task = MLP(args.dropout, args.lr)
    task.marker = out / "killed.marker"
    if args.sigterm_at and int(os.environ.get("RANK", "0")) == 0:
        original = task.training_step

        def step_then_term(batch):  # type: ignore[no-untyped-def]
            term_marker = out / "term.marker"
            if task.calls + 1 == args.sigterm_at and not term_marker.exists():
                term_marker.write_text("sent")
                os.kill(os.getpid(), signal.SIGTERM)
            return original(batch)

        task.training_step = step_then_term  # type: ignore[method-assign]
    data = ShardedDataset(TensorSource(make_data()), batch_size=args.batch_size, seed=3)
    val = ShardedDataset(TensorSource(make_data(64, seed=9)), batch_size=16, shuffle=False)
    rank = int(os.environ.get("RANK", "0"))
    try:
        result = trainer.fit(task, data, val if args.val else None)
    except SystemExit as exc:
        (out / f"exit{rank}.json").write_text(json.dumps({"code": exc.code, "step": trainer.step}))
        raise
    import torch.distributed as dist

    assert not dist.is_initialized(), "the trainer must tear down the group it started"
    summary = {
        "step": result.step,
        "loss": result.loss,
        "metrics": result.metrics,
        "val_metrics": result.val_metrics,
        "resumed_from": result.resumed_from,
        "seen": task.seen,
        "losses": [m["loss"] for m in recorder.rows],
    }
    (out / f"summary{rank}.json").write_text(json.dumps(summary))
    torch.save(task._final_state, out / f"rank{rank}.pt")  # type: ignore[attr-defined]
    sys.stdout.flush()


if __name__ == "__main__":
    main()
