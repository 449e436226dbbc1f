"""Run by torchrun (2 processes, gloo, CPU) from tests/train/test_checkpoint.py.

For each wrapping (DDP, FSDP2 ``fully_shard``, tensor parallel): train two steps, save (sync, then async + wait),
record the full weights, load the newest checkpoint into a freshly initialised wrapped model and
check the weights and this rank's extra came back; export the consolidated weights.
``elastic``: load OUT_DIR/elastic (saved by one process) on two ranks: rank 0 gets its own
extra, rank 1 gets rank 0's without the RNG state.
Usage: dist_ckpt.py OUT_DIR [ddp] [fsdp] [tp] [elastic]
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from maru.train.checkpoint import CheckpointManager, export_safetensors


def build(kind: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    if kind == "ddp":
        return torch.nn.parallel.DistributedDataParallel(model)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    if kind == "tp":
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        return parallelize_module(model, mesh, {"0": ColwiseParallel(), "2": RowwiseParallel()})
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def full_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
    return {k: v.clone() for k, v in get_model_state_dict(model, options=options).items()}


def run(kind: str, out: Path) -> None:
    rank = dist.get_rank()
    data_rank = 0 if kind == "tp" else rank  # tensor parallel ranks see the same batch
    model = build(kind, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for _ in range(2):
        torch.manual_seed(100 + data_rank)
        model(torch.randn(3, 6)).pow(2).sum().backward()
        opt.step(), sched.step(), opt.zero_grad()
    sync = CheckpointManager(out / kind, keep_last=2)
    sync.save(2, model=model, optimizers=[opt], schedulers=[sched], extra={"rank": rank, "k": kind})
    model(torch.randn(3, 6)).pow(2).sum().backward()
    opt.step(), sched.step(), opt.zero_grad()
    expected = full_weights(model)
    manager = CheckpointManager(out / kind, keep_last=2, async_save=True)
    path = manager.save(3, model=model, optimizers=[opt], schedulers=[sched], extra={"rank": rank})
    manager.wait()
    assert manager.latest() == path, (manager.latest(), path)
    if rank == 0:
        torch.save(expected, out / f"{kind}_expected.pt")

    fresh = build(kind, seed=1)
    assert any(not torch.equal(a, expected[k]) for k, a in full_weights(fresh).items())
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.05)
    fresh_sched = torch.optim.lr_scheduler.LambdaLR(fresh_opt, lambda s: 1.0 / (1 + s))
    extra = manager.load(path, model=fresh, optimizers=[fresh_opt], schedulers=[fresh_sched])
    assert extra["rank"] == rank and extra["_checkpoint"]["source_rank"] == rank, extra
    assert fresh_sched.last_epoch == 3, fresh_sched.last_epoch
    for key, value in full_weights(fresh).items():
        assert torch.equal(value, expected[key]), key
    # one more identical step on both: the optimizer state came back too
    for m, o in ((model, opt), (fresh, fresh_opt)):
        torch.manual_seed(7 + data_rank)
        m(torch.randn(3, 6)).pow(2).sum().backward()
        o.step(), o.zero_grad()
    after, after_fresh = full_weights(model), full_weights(fresh)
    for key, value in after.items():
        assert torch.equal(value, after_fresh[key]), f"after a step: {key}"
    export_safetensors(model, out / f"{kind}_full.safetensors")
    if rank == 0:
        torch.save(after, out / f"{kind}_after.pt")
    dist.barrier()
    print(f"rank {rank}: {kind} OK", flush=True)


def run_elastic(out: Path) -> None:
    rank = dist.get_rank()
    model = build("ddp", seed=5)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    manager = CheckpointManager(out / "elastic")
    path = manager.latest()
    assert path is not None
    extra = manager.load(path, model=model, optimizers=[opt])
    info = extra["_checkpoint"]
    assert (info["saved_world_size"], info["world_size"], info["source_rank"]) == (1, 2, 0), info
    assert extra["data"]["consumed"] == 8, extra
    assert ("rng" in extra) == (rank == 0), sorted(extra)
    expected = torch.load(out / "elastic_expected.pt")
    for key, value in full_weights(model).items():
        assert torch.equal(value, expected[key]), key
    dist.barrier()
    print(f"rank {rank}: elastic OK", flush=True)


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    status = 0
    for kind in sys.argv[2:]:
        try:
            run_elastic(out) if kind == "elastic" else run(kind, out)
        except Exception:
            traceback.print_exc()
            print(f"rank {dist.get_rank()}: {kind} FAILED", flush=True)
            status = 1
            break
    dist.destroy_process_group()
    sys.exit(status)


if __name__ == "__main__":
    main()
