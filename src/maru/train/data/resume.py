"""How the trainer makes the training data it is given keep its place across a restart.

The trainer's data protocol is four methods: ``shard(rank, world_size)``, ``set_epoch(epoch)``,
``state_dict()`` (with ``"epoch"`` and ``"offset"``, the batches taken this epoch) and
``load_state_dict(state)``. :class:`~maru.train.data.ShardedDataset` has it;
:func:`resumable` gives it to what else it can:

- a plain ``DataLoader`` over a map-style dataset becomes a
  :class:`~maru.train.data.loader_state.ResumableLoader` (exact mid-epoch resume, workers or not;
  a DistributedSampler under DDP);
- an iterable that keeps its own place — the :class:`Stateful` protocol below — given directly or
  in a ``DataLoader`` without workers, becomes a :class:`StatefulIterable`;
- anything else is used as given, and a resume restarts its epoch (the trainer warns).

The :class:`Stateful` protocol for an ``IterableDataset`` (Hugging Face's ``IterableDataset``
follows it): ``state_dict()`` returns the place after the last sample it yielded, as plain
values (numbers, strings, lists, dicts, tensors: it goes into a ``weights_only`` checkpoint);
``load_state_dict(state)`` makes the next ``iter()`` continue right after that sample. An
optional ``set_epoch(epoch)`` is called at every epoch's start and before ``load_state_dict``.
In a DataLoader with workers the place lives in the worker processes, where the trainer cannot
read it: such a loader restarts its epoch on resume (a warning says so when ``fit`` starts).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

_PROTOCOL = ("shard", "set_epoch", "state_dict", "load_state_dict")


@runtime_checkable
class Stateful(Protocol):
    """An iterable that can say where it is and continue from there (see the module)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def keeps_place(data: Any) -> bool:
    """Whether ``data`` has the trainer's data protocol (a ShardedDataset, a wrapped loader, …)."""
    return all(callable(getattr(data, name, None)) for name in _PROTOCOL)


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


class StatefulIterable:
    """An iterable (or a worker-less DataLoader over one) whose dataset keeps its own place.

    ``holder`` is what has ``state_dict``/``load_state_dict`` (the dataset); ``data`` is what is
    iterated (the loader, or the dataset itself). It splits nothing across ranks: an iterable
    reads what its own code gives each rank (Hugging Face's ``split_dataset_by_node`` …).
    """

    def __init__(self, data: Iterable[Any], holder: Stateful) -> None:
        self.data, self.holder = data, holder
        self._epoch = 0
        self._taken = 0

    def shard(self, rank: int, world_size: int) -> None:
        """Nothing to do: an iterable splits itself across ranks."""

    def set_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            self._epoch, self._taken = int(epoch), 0
        set_epoch = getattr(self.holder, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self._epoch)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.data:
            self._taken += 1
            yield batch
        self._epoch, self._taken = self._epoch + 1, 0

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "offset": self._taken, "dataset": self.holder.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._taken = 0
        self.set_epoch(int(state.get("epoch", 0)))
        self._taken = int(state.get("offset", 0))
        self.holder.load_state_dict(state["dataset"])


def resumable(data: Any, *, seed: int = 0, world_size: int = 1) -> Any:
    """``data`` with the trainer's data protocol where it can be given one, else ``data`` itself
    (see the module). ``seed`` seeds a DistributedSampler added under data parallelism."""
    if keeps_place(data):
        return data
    from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

    from .loader_state import ResumableLoader, is_plain_dataloader

    if isinstance(data, DataLoader):
        dataset = data.dataset
        if isinstance(dataset, IterableDataset):
            return _iterable_loader(data, dataset)
        if is_plain_dataloader(data):
            return ResumableLoader(data, seed=seed)
        if world_size > 1 and not isinstance(data.sampler, DistributedSampler):
            warnings.warn(
                f"the training DataLoader is a {type(data).__name__}, which maru does not rebuild, "
                f"and has no DistributedSampler: each of the {world_size} ranks reads every sample. "
                "Give it a DistributedSampler, or use a plain DataLoader",
                stacklevel=3,
            )
        return data
    if _stateful(data):
        return StatefulIterable(data, data)
    return data


def _iterable_loader(loader: Any, dataset: Any) -> Any:
    """A DataLoader over an IterableDataset: resumable when the dataset keeps its place in this
    process (no workers)."""
    if not _stateful(dataset):
        return loader
    if loader.num_workers > 0:
        warnings.warn(
            f"the training DataLoader reads its {type(dataset).__name__} in {loader.num_workers} "
            "worker processes, where the dataset's state_dict cannot be read: a resume restarts the "
            "epoch. For an exact resume use num_workers=0, a map-style dataset, or a ShardedDataset",
            stacklevel=4,
        )
        return loader
    return StatefulIterable(loader, dataset)
