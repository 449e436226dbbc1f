"""In one process: what the trainer's data wrappers keep and restore (a DataLoader's place, its
DistributedSampler, a ShardedDataset behind workers, Stateful iterables)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    RandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)

from maru.errors import TrainError
from maru.train.data import (
    ResumableLoader,
    ShardedDataset,
    ShardedLoader,
    StatefulIterable,
    TensorSource,
    resumable,
)

N = 40


def _loader(**options: Any) -> DataLoader:  # type: ignore[type-arg]
    return DataLoader(TensorDataset(torch.arange(N)), batch_size=4, **options)


def _flat(batch: Any) -> list[int]:
    """A batch's sample ids: a TensorDataset's (ids,) or an iterable's (B, 1) tensor."""
    return (batch[0] if isinstance(batch, list | tuple) else batch.flatten()).tolist()


def _ids(batches: Any) -> list[list[int]]:
    return [_flat(batch) for batch in batches]


def _take(data: Any, k: int) -> list[list[int]]:
    out = []
    for batch in data:
        out.append(_flat(batch))
        if len(out) == k:
            break
    return out


@pytest.mark.parametrize("options", [{"shuffle": True}, {"shuffle": True, "generator": torch.Generator().manual_seed(3)}])
def test_a_new_loader_continues_the_saved_epoch(options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    first = resumable(_loader(**options))
    assert isinstance(first, ResumableLoader)
    _ids(first)  # epoch 0
    epoch = iter(first)
    whole = [next(epoch)[0].tolist() for _ in range(4)]  # epoch 1, four batches
    state = first.state_dict()
    after = torch.default_generator.get_state()  # what the checkpoint restores
    whole += _ids(epoch)

    torch.manual_seed(123)  # the restarted process: other generator states until the checkpoint's
    if "generator" in options:
        options["generator"] = torch.Generator().manual_seed(3)
    second = resumable(_loader(**options))
    second.load_state_dict(state)
    assert second.state_dict()["offset"] == 4 and second.epoch == 1
    torch.default_generator.set_state(after)
    assert whole[:4] + _ids(second) == whole
    assert torch.equal(torch.default_generator.get_state(), after)  # the training stream is untouched


def test_shard_splits_a_plain_loader_across_ranks_and_keeps_its_order() -> None:
    halves = []
    for rank in (0, 1):
        loader = resumable(_loader(), world_size=2)
        loader.shard(rank, 2)
        assert isinstance(loader.sampler, DistributedSampler) and not loader.sampler.shuffle
        halves.append(sum(_ids(loader), []))
    assert sorted(halves[0] + halves[1]) == list(range(N)) and not set(halves[0]) & set(halves[1])
    assert halves[0] == sorted(halves[0])  # no shuffle asked, none added
    shuffled = resumable(_loader(shuffle=True))
    shuffled.shard(0, 2)
    assert shuffled.sampler.shuffle and len(shuffled) == N // 2 // 4
    orders = [_ids(shuffled) for _ in range(2)]
    assert orders[0] != orders[1]  # the epoch moved on: set_epoch reached the sampler


class InOrder:
    def __iter__(self) -> Any:
        return (list(range(i, i + 4)) for i in range(0, N, 4))

    def __len__(self) -> int:
        return N // 4


@pytest.mark.parametrize(
    ("loader", "says"),
    [
        (lambda: DataLoader(TensorDataset(torch.arange(N)), batch_sampler=InOrder()), "custom batch_sampler (InOrder)"),
        (lambda: _loader(sampler=WeightedRandomSampler([1.0] * N, N)), "custom sampler (WeightedRandomSampler)"),
        (lambda: _loader(sampler=RandomSampler(range(N), replacement=True)), "with replacement"),
    ],
)
def test_sampling_that_cannot_be_split_is_refused(loader: Any, says: str) -> None:
    wrapped = resumable(loader(), world_size=2)
    with pytest.raises(TrainError) as err:
        wrapped.shard(0, 2)
    assert says in str(err.value)
    wrapped.shard(0, 1)  # one process: nothing to split, it just resumes


def test_a_users_batch_sampler_is_split_with_its_batch_size() -> None:
    batches = BatchSampler(RandomSampler(range(N)), batch_size=5, drop_last=True)
    loader = resumable(DataLoader(TensorDataset(torch.arange(N)), batch_sampler=batches))
    loader.shard(1, 2)
    assert [len(b) for b in _ids(loader)] == [5] * 4


def test_a_loader_subclass_is_left_alone_with_a_warning_under_ddp() -> None:
    class Mine(DataLoader):  # type: ignore[type-arg]
        pass

    with pytest.warns(UserWarning, match="each of the 2 ranks reads every sample"):
        data = resumable(Mine(TensorDataset(torch.arange(N)), batch_size=4), world_size=2)
    assert type(data) is Mine


def test_sharded_loader_reads_ahead_but_keeps_the_trained_position() -> None:
    def dataset() -> ShardedDataset:
        return ShardedDataset(TensorSource({"id": torch.arange(N)}), batch_size=4, seed=1)

    plain = [b["id"].tolist() for b in dataset()]
    with_workers = dataset().loader(num_workers=2, prefetch_factor=2)
    assert isinstance(with_workers, ShardedLoader) and not with_workers.loader.pin_memory
    taken = []
    for batch in with_workers:
        taken.append(batch["id"].tolist())
        if len(taken) == 3:
            break
    assert taken == plain[:3]
    state = with_workers.state_dict()
    assert state["offset"] == 3  # four batches were read ahead; three were taken
    resumed = dataset().loader(num_workers=2)
    resumed.load_state_dict(state)
    assert [b["id"].tolist() for b in resumed] == plain[3:]
    assert resumed.epoch == 1


class Counter(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.at, self.epoch = 0, 0

    def __iter__(self) -> Any:
        while self.at < 10:
            self.at += 1
            yield torch.tensor([self.at - 1 + 100 * self.epoch])
        self.at = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        return {"at": self.at}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.at = state["at"]


def test_a_stateful_iterable_continues_after_its_last_sample() -> None:
    first = resumable(DataLoader(Counter(), batch_size=2))
    assert isinstance(first, StatefulIterable)
    first.set_epoch(3)
    assert _take(first, 2) == [[300, 301], [302, 303]]
    state = first.state_dict()
    assert state == {"epoch": 3, "offset": 2, "dataset": {"at": 4}}
    second = resumable(DataLoader(Counter(), batch_size=2))
    second.load_state_dict(state)
    assert _ids(second) == [[304, 305], [306, 307], [308, 309]]
    assert second.state_dict()["epoch"] == 4


def test_a_stateful_iterable_behind_workers_is_not_wrapped_and_says_why() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = resumable(DataLoader(Counter(), batch_size=2, num_workers=2))
    assert isinstance(data, DataLoader)
    assert "worker processes" in str(caught[0].message)
