"""A :class:`~maru.train.data.ShardedDataset` read by worker processes, with prefetch and
pinned memory, and still resumable exactly.

The main process decides every batch's sample indices (cheap: a slice of the epoch's order) and
a torch ``DataLoader`` hands them to workers that read and collate. The dataset's position moves
only when the training loop takes a batch, never when a worker reads ahead, so a checkpoint says
what was trained on and a resumed run reads exactly what an unbroken one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from maru.errors import TrainError

if TYPE_CHECKING:
    from .sharded import ShardedDataset


class _BatchReader:
    """The map-style face the DataLoader's workers read: a list of indices → one collated batch."""

    def __init__(self, dataset: ShardedDataset) -> None:
        self.read = dataset._read  # bound to the source and collate; what a worker needs
        self.n = len(dataset.source)

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices: Sequence[int]) -> Any:
        import torch

        return self.read(torch.as_tensor(indices, dtype=torch.long))

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])


def _batch_as_read(batch: Any) -> Any:
    """The DataLoader's collate: the reader already collated the batch."""
    return batch


class _RemainingSteps:
    """The DataLoader's batch sampler: this rank's index lists for the steps left in the epoch,
    from the position at the moment a pass starts."""

    def __init__(self, dataset: ShardedDataset) -> None:
        self.dataset = dataset

    def __iter__(self) -> Iterator[list[int]]:
        return (indices.tolist() for indices in self.dataset._plan())

    def __len__(self) -> int:
        return self.dataset.remaining


class ShardedLoader:
    """What :meth:`ShardedDataset.loader` returns: the dataset's batches through worker
    processes. It has the trainer's data protocol (``shard``, ``set_epoch``, ``state_dict``,
    ``load_state_dict``), all passed to the dataset, which alone holds the position."""

    def __init__(
        self,
        dataset: ShardedDataset,
        *,
        num_workers: int,
        prefetch_factor: int,
        pin_memory: bool | None,
        persistent_workers: bool,
    ) -> None:
        if num_workers < 1 or prefetch_factor < 1:
            raise TrainError(
                f"a ShardedDataset loader needs num_workers >= 1 and prefetch_factor >= 1 (got "
                f"{num_workers}, {prefetch_factor}); iterate the dataset itself to read in this process"
            )
        import torch
        from torch.utils.data import DataLoader

        self.dataset = dataset
        pin = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.loader: DataLoader[Any] = DataLoader(
            _BatchReader(dataset),  # type: ignore[arg-type]
            batch_sampler=_RemainingSteps(dataset),
            collate_fn=_batch_as_read,
            num_workers=num_workers,
            prefetch_factor=prefetch_factor,
            pin_memory=pin,
            persistent_workers=persistent_workers,
            # the workers' base seed comes from here, not from torch's global generator, whose
            # stream the training steps use (and a checkpoint restores)
            generator=torch.Generator().manual_seed(dataset.seed),
        )

    def __iter__(self) -> Iterator[Any]:
        dataset = self.dataset
        dataset._check_not_empty()
        version = dataset._version
        for batch in self.loader:
            dataset._took_step()
            yield batch
            if dataset._version != version:  # set_epoch / load_state_dict / shard while iterating
                return
        dataset._end_epoch()

    def __len__(self) -> int:
        return len(self.dataset)

    def shard(self, rank: int, world_size: int) -> None:
        self.dataset.shard(rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.dataset.load_state_dict(state)

    def __repr__(self) -> str:
        return f"ShardedLoader({self.dataset!r}, num_workers={self.loader.num_workers})"
