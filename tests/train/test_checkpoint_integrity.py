"""Every checkpoint file is hashed whatever its size, and a checkpoint that verifies but does not
load into the model falls back to the previous one (issue 18, item 7)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from maru.errors import CheckpointError
from maru.train import Task, Trainer
from maru.train.checkpoint import CheckpointManager

pytestmark = pytest.mark.filterwarnings("ignore:.*TypedStorage.*:UserWarning")

BIG_ROWS = 4600  # 4600 x 1000 float32 = 18.4 MB in one DCP shard: past the old 16 MiB hash limit


def _big_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Embedding(BIG_ROWS, 1000)


def _shard(path: Path) -> Path:
    (shard,) = path.glob("*.distcp")
    return shard


def _flip_bytes_in_place(file: Path) -> None:
    """Same-size corruption: a few bytes in the middle flipped, the length unchanged."""
    size = file.stat().st_size
    with file.open("r+b") as f:
        f.seek(size // 2)
        chunk = bytearray(f.read(16))
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    assert file.stat().st_size == size


def test_same_size_corruption_of_a_large_shard_is_detected(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    first = manager.save(1, model=_big_model(0))
    second = manager.save(2, model=_big_model(1))
    shard = _shard(second)
    assert shard.stat().st_size > 16 << 20
    _flip_bytes_in_place(shard)
    with pytest.warns(RuntimeWarning, match=f"skipping checkpoint {second}.*sha256"):
        assert manager.latest() == first
    fresh = _big_model(2)
    with pytest.warns(RuntimeWarning, match="skipping checkpoint"):
        loaded = manager.load_latest(model=fresh)
    assert loaded is not None and loaded[0] == first
    assert torch.equal(fresh.weight, _big_model(0).weight)


def test_every_file_in_the_manifest_carries_a_sha256(tmp_path: Path) -> None:
    path = CheckpointManager(tmp_path).save(1, model=_big_model(0))
    files = json.loads((path / "manifest.json").read_text())["files"]
    assert files and all(len(entry["sha256"]) == 64 for entry in files.values())


def test_a_manifest_without_hashes_for_large_files_still_verifies(tmp_path: Path) -> None:
    """Checkpoints written before every file was hashed stay readable (sizes still checked)."""
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, model=_big_model(0))
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["files"][_shard(path).name]["sha256"]
    manifest_path.write_text(json.dumps(manifest))
    assert manager.verify(path) is None
    assert manager.latest() == path


def _small(out: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, out))


def test_a_checkpoint_that_verifies_but_does_not_load_falls_back(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    model = _small()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    first = manager.save(1, model=model, optimizers=[opt], extra={"n": 1})
    mismatched = _small(out=3)  # a state dict of other shapes, complete and hashed
    second = manager.save(2, model=mismatched, optimizers=[torch.optim.SGD(mismatched.parameters())])
    assert manager.verify(second) is None
    fresh = _small()
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match=f"checkpoint {second} verifies but does not load"):
        loaded = manager.load_latest(model=fresh, optimizers=[fresh_opt])
    assert loaded is not None
    path, extra = loaded
    assert path == first and extra["n"] == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters(), strict=True))


def test_when_no_checkpoint_loads_the_error_names_them_all(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    for step in (1, 2):
        manager.save(step, model=_small(out=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(CheckpointError, match=r"(?s)none of the 2 checkpoints.*step_000000001.*Size mismatch"):
            manager.load_latest(model=_small())


def test_no_checkpoint_means_nothing_loaded(tmp_path: Path) -> None:
    assert CheckpointManager(tmp_path / "empty").load_latest(model=_small()) is None


class _Regression(Task):
    def __init__(self, out: int = 1) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, out)

    def training_step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_trainer_resumes_from_the_previous_checkpoint_when_the_newest_does_not_load(
    tmp_path: Path,
) -> None:
    data = [torch.randn(4, 3) for _ in range(4)]
    settings = {"checkpoint_dir": tmp_path, "checkpoint_every": 2, "progress": False, "loggers": None}
    Trainer(max_steps=2, **settings).fit(_Regression(), data)
    wrong = _Regression(out=2)  # the newest checkpoint holds another model's shapes
    CheckpointManager(tmp_path).save(4, model=wrong, optimizers=[wrong.configure_optimizers()])
    with pytest.warns(RuntimeWarning, match="verifies but does not load"):
        result = Trainer(max_steps=3, **settings).fit(_Regression(), data)
    assert result.resumed_from is not None and result.resumed_from.endswith("step_000000002")
    assert result.step == 3


def test_hashing_is_streamed(tmp_path: Path) -> None:
    """No file is read whole into memory to hash it: verifying an 18 MB shard allocates little."""
    import tracemalloc

    manager = CheckpointManager(tmp_path)
    path = manager.save(1, model=_big_model(0))
    tracemalloc.start()
    try:
        assert manager.verify(path) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
