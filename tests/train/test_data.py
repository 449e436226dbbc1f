"""ShardedDataset splits, shuffles and resumes deterministically; every source reads its format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maru.errors import LoaderError, TrainError
from maru.train.data import (
    IdxSource,
    JsonlSource,
    ParquetSource,
    ShardedDataset,
    TensorSource,
    default_collate,
    read_idx,
    write_idx,
)


def _ids(n: int) -> TensorSource:
    return TensorSource({"id": torch.arange(n), "x": torch.arange(n, dtype=torch.float32) * 2})


def _epoch(ds: ShardedDataset) -> list[list[int]]:
    return [batch["id"].tolist() for batch in ds]


def _ranks(n: int, world: int, **kw: object) -> list[ShardedDataset]:
    out = []
    for r in range(world):
        ds = ShardedDataset(_ids(n), **kw)  # type: ignore[arg-type]
        ds.shard(r, world)
        out.append(ds)
    return out


# -- splitting -------------------------------------------------------------------------------


def test_ranks_cover_every_sample_once_with_equal_batch_counts() -> None:
    ranks = _ranks(48, 3, batch_size=4, seed=7)
    epochs = [_epoch(ds) for ds in ranks]
    assert [len(e) for e in epochs] == [4, 4, 4] == [len(ds) for ds in ranks]
    flat = [i for e in epochs for b in e for i in b]
    assert sorted(flat) == list(range(48))
    assert all(len(b) == 4 for e in epochs for b in e)


def test_batch_values_follow_the_ids() -> None:
    (ds,) = _ranks(10, 1, batch_size=5, seed=0)
    for batch in ds:
        assert torch.equal(batch["x"], batch["id"].float() * 2)


def test_drop_last_true_drops_the_short_tail_on_every_rank() -> None:
    ranks = _ranks(50, 3, batch_size=4, seed=1)  # 12 per step: 4 steps, 2 samples dropped
    epochs = [_epoch(ds) for ds in ranks]
    assert [len(e) for e in epochs] == [4, 4, 4]
    flat = [i for e in epochs for b in e for i in b]
    assert len(flat) == len(set(flat)) == 48


def test_drop_last_false_pads_by_wrapping_with_equal_batches() -> None:
    ranks = _ranks(50, 3, batch_size=4, seed=1, drop_last=False)
    epochs = [_epoch(ds) for ds in ranks]
    assert [len(e) for e in epochs] == [5, 5, 5] == [len(ds) for ds in ranks]
    assert [len(e[-1]) for e in epochs] == [1, 1, 1]  # 2 left over -> ceil(2/3) = 1 each
    flat = [i for e in epochs for b in e for i in b]
    assert set(flat) == set(range(50)) and len(flat) == 51


def test_no_shuffle_is_in_order() -> None:
    (ds,) = _ranks(6, 1, batch_size=2, shuffle=False)
    assert _epoch(ds) == [[0, 1], [2, 3], [4, 5]]


def test_epochs_reshuffle_and_the_seed_decides() -> None:
    a, b, c = (ShardedDataset(_ids(32), batch_size=8, seed=s) for s in (3, 3, 4))
    e0, e0_again, other_seed = _epoch(a), _epoch(b), _epoch(c)
    assert e0 == e0_again and e0 != other_seed
    a.set_epoch(1)
    e1 = _epoch(a)
    assert e1 != e0 and sorted(sum(e1, [])) == list(range(32))
    b.set_epoch(1)
    assert _epoch(b) == e1


def test_running_to_the_end_moves_to_the_next_epoch() -> None:
    ds = ShardedDataset(_ids(8), batch_size=4, seed=0)
    first = _epoch(ds)
    assert ds.epoch == 1 and ds.state_dict()["offset"] == 0
    ref = ShardedDataset(_ids(8), batch_size=4, seed=0)
    ref.set_epoch(1)
    assert _epoch(ds) == _epoch(ref) != first


def test_default_shard_is_single_process() -> None:
    ds = ShardedDataset(_ids(8), batch_size=4)
    assert (ds.rank, ds.world_size, len(ds)) == (0, 1, 2)


# -- resuming --------------------------------------------------------------------------------


def test_resume_mid_epoch_gives_exactly_the_remaining_batches() -> None:
    full = _epoch(ShardedDataset(_ids(40), batch_size=4, seed=5))
    ds = ShardedDataset(_ids(40), batch_size=4, seed=5)
    it = iter(ds)
    seen = [next(it)["id"].tolist() for _ in range(3)]
    state = ds.state_dict()
    assert (state["epoch"], state["offset"], state["consumed"]) == (0, 3, 12)
    resumed = ShardedDataset(_ids(40), batch_size=4, seed=5)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # what a trainer's epoch loop does: keeps the position
    assert resumed.remaining == 7
    assert seen + _epoch(resumed) == full


def test_resume_in_a_later_epoch() -> None:
    ds = ShardedDataset(_ids(20), batch_size=5, seed=2)
    ds.set_epoch(4)
    it = iter(ds)
    next(it)
    state = ds.state_dict()
    ref = ShardedDataset(_ids(20), batch_size=5, seed=2)
    ref.set_epoch(4)
    resumed = ShardedDataset(_ids(20), batch_size=5, seed=2)
    resumed.load_state_dict(state)
    assert resumed.epoch == 4 and _epoch(resumed) == _epoch(ref)[1:]


def test_resume_on_the_same_world_size_matches_the_uninterrupted_run() -> None:
    uninterrupted = [_epoch(ds) for ds in _ranks(48, 2, batch_size=3, seed=9)]
    ranks = _ranks(48, 2, batch_size=3, seed=9)
    its = [iter(ds) for ds in ranks]
    for it in its:
        next(it), next(it)
    states = [ds.state_dict() for ds in ranks]
    for r, state in enumerate(states):
        fresh = ShardedDataset(_ids(48), batch_size=3, seed=9)
        fresh.shard(r, 2)
        fresh.load_state_dict(state)
        assert _epoch(fresh) == uninterrupted[r][2:]


@pytest.mark.parametrize("new_world", [1, 3, 4])
def test_world_size_change_covers_the_rest_of_the_epoch_without_repeats(new_world: int) -> None:
    old = _ranks(48, 2, batch_size=2, seed=11)
    seen: list[int] = []
    for ds in old:
        it = iter(ds)
        for _ in range(3):  # 3 steps x 2 ranks x 2 = 12 samples
            seen += next(it)["id"].tolist()
    state = old[0].state_dict()
    assert state["consumed"] == 12 and old[1].state_dict()["consumed"] == 12
    rest: list[int] = []
    counts = []
    for r in range(new_world):
        ds = ShardedDataset(_ids(48), batch_size=2, seed=11)
        ds.shard(r, new_world)
        ds.load_state_dict(state)
        batches = _epoch(ds)
        counts.append(len(batches))
        rest += [i for b in batches for i in b]
    assert len(set(counts)) == 1
    assert not set(seen) & set(rest) and len(rest) == len(set(rest))
    per_step = 2 * new_world
    assert len(rest) == (36 // per_step) * per_step  # tail shorter than one step is dropped
    if 36 % per_step == 0:
        assert sorted(seen + rest) == list(range(48))


def test_world_size_change_with_drop_last_false_reads_everything() -> None:
    old = _ranks(30, 2, batch_size=2, seed=1, drop_last=False)
    seen: list[int] = []
    for ds in old:
        it = iter(ds)
        seen += next(it)["id"].tolist()
    state = old[0].state_dict()
    rest: list[int] = []
    for r in range(4):
        ds = ShardedDataset(_ids(30), batch_size=2, seed=1, drop_last=False)
        ds.shard(r, 4)
        ds.load_state_dict(state)
        rest += [i for b in _epoch(ds) for i in b]
    remaining = set(range(30)) - set(seen)
    assert len(remaining) == 26 and remaining <= set(rest)
    assert len(rest) == 28  # 3 full steps of 8, then 2 samples padded to 1 per rank


@pytest.mark.parametrize(
    ("change", "message"),
    [({"len": 41}, "source length"), ({"batch_size": 8}, "batch size"), ({"seed": 6}, "seed")],
)
def test_resume_with_other_data_settings_is_a_clear_error(change: dict, message: str) -> None:
    ds = ShardedDataset(_ids(40), batch_size=4, seed=5)
    state = {**ds.state_dict(), **change}
    with pytest.raises(TrainError, match=message):
        ShardedDataset(_ids(40), batch_size=4, seed=5).load_state_dict(state)


def test_errors_for_bad_settings() -> None:
    with pytest.raises(TrainError, match="batch_size"):
        ShardedDataset(_ids(4), batch_size=0)
    with pytest.raises(TrainError, match="fewer than batch_size"):
        iter(ShardedDataset(_ids(4), batch_size=8))
    with pytest.raises(TrainError, match="rank 2 of world size 2"):
        ShardedDataset(_ids(4), batch_size=1).shard(2, 2)


def test_custom_collate_and_getitems_path() -> None:
    ds = ShardedDataset(_ids(6), batch_size=3, shuffle=False, collate=lambda s: [x["id"].item() for x in s])
    assert list(ds) == [[0, 1, 2], [3, 4, 5]]


# -- sources ---------------------------------------------------------------------------------


def test_tensor_source_pt_file_dict_and_tuple(tmp_path: Path) -> None:
    x, y = torch.randn(10, 3), torch.arange(10)
    torch.save({"x": x, "y": y}, tmp_path / "d.pt")
    torch.save((x, y), tmp_path / "t.pt")
    d = TensorSource(tmp_path / "d.pt")
    assert len(d) == 10 and torch.equal(d[4]["x"], x[4]) and d[4]["y"].item() == 4
    t = TensorSource(tmp_path / "t.pt")
    batch = next(iter(ShardedDataset(t, batch_size=4, shuffle=False)))
    assert torch.equal(batch[0], x[:4]) and torch.equal(batch[1], y[:4])
    assert [s[1].item() for s in t.__getitems__([3, 1])] == [3, 1]


def test_tensor_source_safetensors_is_memory_mapped_and_exact(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {
        "a": torch.randn(7, 2),
        "b": torch.arange(7, dtype=torch.int16),
        "c": torch.randn(7, 3).to(torch.bfloat16),
    }
    save_file(tensors, str(tmp_path / "s.safetensors"))
    src = TensorSource(tmp_path / "s.safetensors")
    assert len(src) == 7
    batch = src.read_batch(torch.tensor([6, 0, 3]))
    for key, value in tensors.items():
        assert batch[key].dtype == value.dtype and torch.equal(batch[key], value[[6, 0, 3]])


def test_tensor_source_in_memory_single_tensor() -> None:
    src = TensorSource(torch.arange(12).reshape(6, 2))
    assert next(iter(ShardedDataset(src, batch_size=2, shuffle=False))).tolist() == [[0, 1], [2, 3]]


def test_tensor_source_errors(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="different lengths"):
        TensorSource({"x": torch.zeros(3), "y": torch.zeros(4)})
    with pytest.raises(LoaderError, match="does not exist"):
        TensorSource(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(LoaderError, match="could not be loaded"):
        TensorSource(tmp_path / "bad.pt")
    with pytest.raises(LoaderError, match="not a tensor"):
        TensorSource({"x": torch.tensor(1.0)})


def test_jsonl_source(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": i % 3, "ids": [i, i + 1]} for i in range(9)]
    lines = [json.dumps(r) for r in rows]
    lines.insert(4, "")  # blank lines are skipped
    (tmp_path / "d.jsonl").write_text("\n".join(lines))  # no trailing newline
    src = JsonlSource(tmp_path / "d.jsonl")
    assert len(src) == 9 and src[8] == rows[8] and src[-1] == rows[8] and src[4] == rows[4]
    picked = JsonlSource(tmp_path / "d.jsonl", fields=["label", "ids"])
    batch = next(iter(ShardedDataset(picked, batch_size=3, shuffle=False)))
    assert batch["label"].tolist() == [0, 1, 2]
    assert batch["ids"].tolist() == [[0, 1], [1, 2], [2, 3]]


def test_jsonl_folder_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"v": 1}\n{"v": 2}\n')
    (folder / "b.jsonl").write_text('{"v": 3}\nnot json\n')
    src = JsonlSource(folder)
    assert [src[i]["v"] for i in range(3)] == [1, 2, 3]
    with pytest.raises(LoaderError, match="not valid JSON"):
        src[3]
    with pytest.raises(LoaderError, match="no field 'w'"):
        JsonlSource(folder / "a.jsonl", fields=["w"])[0]
    with pytest.raises(LoaderError, match="does not exist"):
        JsonlSource(tmp_path / "nope.jsonl")


def test_parquet_source_reads_lazily_across_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"x": np.arange(25, dtype=np.float32), "y": list(range(25)), "s": [f"r{i}" for i in range(25)]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=4)
    src = ParquetSource(tmp_path / "d.parquet", columns=["x", "s"], cache_row_groups=2)
    assert len(src) == 25 and src[13] == {"x": 13.0, "s": "r13"}
    batches = list(ShardedDataset(src, batch_size=5, seed=3))
    ids = sorted(int(v) for b in batches for v in b["x"].tolist())
    assert ids == list(range(25)) and isinstance(batches[0]["s"], list)
    assert len(src._cache) <= 2
    with pytest.raises(LoaderError, match="no column"):
        ParquetSource(tmp_path / "d.parquet", columns=["zzz"])
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(LoaderError, match="not a readable Parquet"):
        ParquetSource(tmp_path / "bad.parquet")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_source(tmp_path: Path, suffix: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(12, 4, 5), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    write_idx(tmp_path / f"img.idx{suffix}", images)
    write_idx(tmp_path / f"lab.idx{suffix}", labels)
    assert np.array_equal(read_idx(tmp_path / f"img.idx{suffix}"), images)
    src = IdxSource(tmp_path / f"img.idx{suffix}", tmp_path / f"lab.idx{suffix}")
    x, y = next(iter(ShardedDataset(src, batch_size=4, shuffle=False)))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x, torch.from_numpy(images[:4]).float() / 255) and y.tolist() == [0, 1, 2, 3]
    img, lab = src[5]
    assert img.shape == (4, 5) and lab.item() == 5
    assert [int(s[1]) for s in src.__getitems__([7, 2])] == [7, 2]


def test_idx_wide_types_round_trip(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.int32).reshape(6, 4) - 5
    write_idx(tmp_path / "w.idx", data)
    assert np.array_equal(read_idx(tmp_path / "w.idx"), data)
    src = IdxSource(tmp_path / "w.idx", normalize=False)
    assert src[2].tolist() == data[2].tolist()


def test_idx_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01x")
    with pytest.raises(LoaderError, match="bad magic"):
        IdxSource(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(LoaderError, match="truncated"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "short.idx.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1])))
    with pytest.raises(LoaderError, match="truncated"):
        read_idx(tmp_path / "short.idx.gz")
    with pytest.raises(LoaderError, match="does not exist"):
        IdxSource(tmp_path / "missing-images.idx")
    write_idx(tmp_path / "i.idx", np.zeros((3, 2), dtype=np.uint8))
    write_idx(tmp_path / "l.idx", np.zeros(4, dtype=np.uint8))
    with pytest.raises(LoaderError, match="matching pair"):
        IdxSource(tmp_path / "i.idx", tmp_path / "l.idx")


def test_default_collate_shapes() -> None:
    batch = default_collate([{"a": 1, "b": "x", "c": (1.0, [1, 2])}, {"a": 2, "b": "y", "c": (2.0, [3, 4])}])
    assert batch["a"].tolist() == [1, 2] and batch["b"] == ["x", "y"]
    assert batch["c"][0].tolist() == [1.0, 2.0] and batch["c"][1].tolist() == [[1, 2], [3, 4]]
    assert default_collate([[1], [2, 3]]) == [[1], [2, 3]]
