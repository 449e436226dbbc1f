"""Checkpoints round-trip exactly, are published atomically, survive torn files and kill -9."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from maru.errors import CheckpointError
from maru.train.checkpoint import CheckpointManager, capture_rng, export_safetensors, restore_rng
from maru.train.data import ShardedDataset, TensorSource

SCRIPTS = Path(__file__).parent / "ckpt_scripts"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings("ignore:.*TypedStorage.*:UserWarning")


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _setup(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, object]:
    model = _model(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: object, steps: int) -> None:
    for _ in range(steps):
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        sched.step()  # type: ignore[attr-defined]
        opt.zero_grad()


def _save(manager: CheckpointManager, step: int, seed: int = 0) -> Path:
    model, opt, sched = _setup(seed)
    return manager.save(step, model=model, optimizers=[opt], schedulers=[sched], extra={"s": step})


def _equal_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            if not _equal_state(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model, opt, sched = _setup(0)
    _train(model, opt, sched, 3)
    data = ShardedDataset(TensorSource(torch.arange(20)), batch_size=4, seed=1)
    it = iter(data)
    next(it), next(it)
    manager = CheckpointManager(tmp_path)
    path = manager.save(
        3,
        model=model,
        optimizers=[opt],
        schedulers=[sched],
        extra={"trainer": {"step": 3}, "data": data.state_dict(), "rng": capture_rng()},
    )
    assert path == tmp_path / "step_000000003" and manager.latest() == path
    expected_next = (torch.rand(3), random.random(), np.random.rand())

    model2, opt2, sched2 = _setup(seed=1)
    extra = manager.load(path, model=model2, optimizers=[opt2], schedulers=[sched2])
    assert extra["trainer"] == {"step": 3}
    assert extra["_checkpoint"]["step"] == 3 and extra["_checkpoint"]["source_rank"] == 0
    assert _equal_state(model.state_dict(), model2.state_dict())
    assert _equal_state(opt.state_dict()["state"], opt2.state_dict()["state"])
    assert sched2.state_dict() == sched.state_dict()  # type: ignore[attr-defined]
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    restore_rng(extra["rng"])
    assert (torch.rand(3), random.random(), np.random.rand())[1:] == expected_next[1:]
    restore_rng(extra["rng"])
    assert torch.equal(torch.rand(3), expected_next[0])

    resumed = ShardedDataset(TensorSource(torch.arange(20)), batch_size=4, seed=1)
    resumed.load_state_dict(extra["data"])
    assert [b.tolist() for b in resumed] == [b.tolist() for b in it]

    torch.manual_seed(9)
    _train(model, opt, sched, 2)
    torch.manual_seed(9)
    _train(model2, opt2, sched2, 2)
    assert _equal_state(model.state_dict(), model2.state_dict())


def test_model_only_and_no_schedulers(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, model=_model(0), optimizers=[], schedulers=[], extra={})
    fresh = _model(1)
    assert manager.load(path, model=fresh, optimizers=[], schedulers=[])["_checkpoint"]["step"] == 1
    assert _equal_state(fresh.state_dict(), _model(0).state_dict())


def test_keep_last_prunes_older_checkpoints(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 6):
        _save(manager, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000004", "step_000000005"]
    with pytest.raises(CheckpointError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)


def test_saving_a_step_again_replaces_it(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    _save(manager, 4, seed=0)
    path = _save(manager, 4, seed=1)
    fresh, opt, sched = _setup(2)
    manager.load(path, model=fresh, optimizers=[opt], schedulers=[sched])
    assert _equal_state(fresh.state_dict(), _model(1).state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["step_000000004"]


def _truncate(path: Path) -> str:
    file = path / "__0_0.distcp"
    file.write_bytes(file.read_bytes()[:-10])
    return "__0_0.distcp has"


def _delete(path: Path) -> str:
    (path / "extra_rank0.pt").unlink()
    return "extra_rank0.pt is missing"


def _no_manifest(path: Path) -> str:
    (path / "manifest.json").unlink()
    return "no manifest.json"


def _bad_manifest(path: Path) -> str:
    (path / "manifest.json").write_text("{not json")
    return "manifest.json is unreadable"


def _flip_byte(path: Path) -> str:
    file = path / ".metadata"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    return "does not match its sha256"


@pytest.mark.parametrize("damage", [_truncate, _delete, _no_manifest, _bad_manifest, _flip_byte])
def test_a_torn_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path, damage) -> None:
    manager = CheckpointManager(tmp_path, keep_last=3)
    first = _save(manager, 1)
    second = _save(manager, 2)
    problem = damage(second)
    with pytest.warns(RuntimeWarning, match=f"skipping checkpoint {second}.*{problem}"):
        assert manager.latest() == first
    with pytest.raises(CheckpointError, match=problem):
        manager.load(second, model=_model())
    # the next save keeps the broken one only while it is not older than a good one
    third = _save(manager, 3)
    assert manager.latest() == third and first.exists()
    if damage is not _flip_byte:  # pruning checks sizes only, not hashes
        assert not second.exists()


def test_leftover_tmp_folders_are_ignored_and_cleaned(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    first = _save(manager, 1)
    leftover = tmp_path / "step_000000002.tmp-deadbeef"
    leftover.mkdir()
    (leftover / "__0_0.distcp").write_bytes(b"partial")
    assert manager.latest() == first
    _save(manager, 3)
    assert not leftover.exists()


def test_no_checkpoint_yet(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path / "none")
    assert manager.latest() is None
    with pytest.raises(CheckpointError, match="does not exist"):
        manager.load(tmp_path / "none" / "step_000000001", model=_model())


def test_load_errors_are_clear(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    path = _save(manager, 1)
    with pytest.raises(CheckpointError, match="scheduler"):
        manager.load(path, model=_model(), optimizers=[], schedulers=[])
    other = torch.nn.Linear(4, 3)
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        manager.load(path, model=other)


class Opaque:
    """Picklable, but not loadable with weights_only."""


def test_extra_that_cannot_be_loaded_safely_fails_at_save(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    with pytest.raises(CheckpointError, match="weights_only"):
        manager.save(1, model=_model(), optimizers=[], schedulers=[], extra={"x": Opaque()})
    with pytest.raises(CheckpointError, match="weights_only"):
        manager.save(1, model=_model(), optimizers=[], schedulers=[], extra={"f": lambda: 1})
    assert manager.latest() is None


def test_async_save_is_published_by_wait(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, async_save=True)
    model, opt, sched = _setup(0)
    first = manager.save(1, model=model, optimizers=[opt], schedulers=[sched], extra={})
    assert manager.latest() is None  # written in the background, not yet published
    manager.wait()
    assert manager.latest() == first
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    second = manager.save(2, model=model, optimizers=[opt], schedulers=[sched], extra={"n": 2})
    with torch.no_grad():  # changing the weights after save() returned does not leak into it
        for p in model.parameters():
            p.add_(1.0)
    third = manager.save(3, model=model, optimizers=[opt], schedulers=[sched], extra={})
    assert manager.latest() == second  # save(3) published save(2) first
    manager.wait()
    assert manager.latest() == third
    fresh, fresh_opt, fresh_sched = _setup(1)
    extra = manager.load(second, model=fresh, optimizers=[fresh_opt], schedulers=[fresh_sched])
    assert extra["n"] == 2
    assert _equal_state(fresh.state_dict(), expected)


def test_export_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = _model(0)
    out = export_safetensors(model, tmp_path / "w" / "model.safetensors")
    assert _equal_state(load_file(str(out)), model.state_dict())

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            self.head.weight = self.embed.weight

    tied = Tied()
    loaded = load_file(str(export_safetensors(tied, tmp_path / "tied.safetensors")))
    assert torch.equal(loaded["embed.weight"], loaded["head.weight"])
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_rng_capture_restore_covers_every_generator() -> None:
    state = capture_rng()
    a = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng(state)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])


def test_kill_9_in_the_middle_of_a_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "kill_mid_save.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == -9, done.stdout + done.stderr
    assert "killing myself" in done.stdout and "not reached" not in done.stdout
    leftovers = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert len(leftovers) == 1 and (leftovers[0] / "__0_0.distcp").exists()
    manager = CheckpointManager(tmp_path)
    latest = manager.latest()
    assert latest == tmp_path / "step_000000001"
    assert manager.load(latest, model=torch.nn.Linear(3, 2))["step"] == 1
    _ = manager.save(3, model=torch.nn.Linear(3, 2), optimizers=[], schedulers=[], extra={})
    assert not leftovers[0].exists()


def test_two_processes_ddp_fsdp2_tp_on_gloo(tmp_path: Path) -> None:
    """DDP, FSDP2 and tensor parallel save sharded (sync and async) and load back equal; a checkpoint saved by two
    ranks loads in one process (reshard), and one saved by one process loads on two ranks."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    data = ShardedDataset(TensorSource(torch.arange(32)), batch_size=4, seed=0)
    it = iter(data)
    next(it), next(it)
    CheckpointManager(tmp_path / "elastic").save(
        5, model=model, optimizers=[opt], schedulers=[],
        extra={"rng": capture_rng(), "data": data.state_dict()},
    )
    torch.save(model.state_dict(), tmp_path / "elastic_expected.pt")

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(SCRIPTS / "dist_ckpt.py"), str(tmp_path), "ddp", "fsdp", "tp", "elastic",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    for kind in ("ddp", "fsdp", "tp", "elastic"):
        assert f"rank 0: {kind} OK" in output and f"rank 1: {kind} OK" in output

    from safetensors.torch import load_file

    for kind in ("ddp", "fsdp", "tp"):
        manager = CheckpointManager(tmp_path / kind)
        latest = manager.latest()
        assert latest is not None and latest.name == "step_000000003"
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == [
            "step_000000002", "step_000000003",
        ]
        expected = torch.load(tmp_path / f"{kind}_expected.pt")
        plain = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
        plain_opt = torch.optim.AdamW(plain.parameters(), lr=0.05)
        plain_sched = torch.optim.lr_scheduler.LambdaLR(plain_opt, lambda s: 1.0 / (1 + s))
        extra = manager.load(latest, model=plain, optimizers=[plain_opt], schedulers=[plain_sched])
        assert extra["rank"] == 0 and extra["_checkpoint"]["saved_world_size"] == 2
        assert _equal_state(plain.state_dict(), expected)
        exported = load_file(str(tmp_path / f"{kind}_full.safetensors"))
        assert _equal_state(exported, torch.load(tmp_path / f"{kind}_after.pt"))


def test_cleanup_helper_does_not_touch_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "other.tmp-1").mkdir()
    manager = CheckpointManager(tmp_path, keep_last=1)
    _save(manager, 1)
    _save(manager, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "other.tmp-1", "step_000000002"]
    shutil.rmtree(tmp_path / "notes")
