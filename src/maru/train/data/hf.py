"""Hugging Face ``datasets`` as training data: :func:`hf_loader` turns a ``Dataset`` or an
``IterableDataset`` (built by the caller, from local files or anything else) into a DataLoader the
trainer resumes exactly. ``datasets`` itself is imported only here and only when used (extra
``maru[hf]``); this module downloads nothing.

- A map-style ``Dataset`` becomes a plain DataLoader over its torch-formatted rows, shuffled by a
  generator of its own seeded with ``seed``: the trainer resumes it mid-epoch and gives it a
  DistributedSampler under DDP (see :mod:`.loader_state`).
- An ``IterableDataset`` (``streaming=True``) is split across the torchrun ranks with
  ``split_dataset_by_node`` and keeps its place through its own ``state_dict`` (see
  :mod:`.resume`), so it resumes exactly when read without workers. ``shuffle`` uses its
  shuffle buffer, which Hugging Face refills on resume: exact resume then holds for the order of
  the files, not within the buffer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from maru.errors import TrainError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader


def _ranks() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; the loader is usually built before ``fit``
    starts the process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def hf_loader(
    dataset: Any,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    columns: Sequence[str] | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    shuffle_buffer: int = 1000,
    **loader_options: Any,
) -> DataLoader[Any]:
    """A DataLoader over a Hugging Face dataset, rows as torch tensors (``columns`` keeps only
    those). ``loader_options`` go to ``DataLoader`` (``pin_memory``, ``persistent_workers`` …)."""
    import datasets
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise TrainError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(dataset, datasets.DatasetDict | datasets.IterableDatasetDict):
        raise TrainError(
            f"hf_loader got a dataset dict with splits {sorted(dataset)}; pass one split, e.g. "
            "dataset['train'] (or load_dataset(..., split='train'))"
        )
    if columns:
        dataset = dataset.select_columns(list(columns))
    formatted = dataset.with_format("torch")
    options: dict[str, Any] = {"num_workers": num_workers, "drop_last": drop_last, **loader_options}
    if collate_fn is not None:
        options["collate_fn"] = collate_fn
    if isinstance(dataset, datasets.IterableDataset):
        return DataLoader(_streamed(formatted, shuffle, seed, shuffle_buffer), batch_size=batch_size, **options)
    if not isinstance(dataset, datasets.Dataset):
        raise TrainError(
            f"hf_loader takes a datasets.Dataset or datasets.IterableDataset, got {type(dataset).__name__}"
        )
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(formatted, batch_size=batch_size, shuffle=shuffle, generator=generator, **options)


def _streamed(dataset: Any, shuffle: bool, seed: int, buffer: int) -> Any:
    """A streaming dataset shuffled (files, then a buffer) and split across this run's ranks."""
    from datasets.distributed import split_dataset_by_node

    if shuffle:
        dataset = dataset.shuffle(seed=seed, buffer_size=buffer)
    rank, world_size = _ranks()
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size) if world_size > 1 else dataset
