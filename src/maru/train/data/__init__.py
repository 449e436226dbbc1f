"""Training data: one shared source that every rank opens, split deterministically, resumable.

:class:`ShardedDataset` (:mod:`.sharded`) decides from ``(seed, epoch)`` alone which samples each
rank reads, so any rank can restart anywhere and a resumed run reads what an unbroken one would.
It reads a *source*, a map-style collection with one module per format:

- :class:`TensorSource` (:mod:`.tensors`): ``.pt`` / ``.safetensors`` / in-memory tensors,
  memory-mapped;
- :class:`JsonlSource` (:mod:`.jsonl`): a byte-offset index, one ``pread`` per sample;
- :class:`ParquetSource` (:mod:`.parquet`): row groups read lazily, the last few cached;
- :class:`IdxSource` (:mod:`.idx`): MNIST-style IDX files, memory-mapped, ``.gz`` too, with
  :func:`read_idx` and :func:`write_idx`.

Importing this package does not import torch, numpy or pyarrow; each loads when first used.
"""

from __future__ import annotations

from .idx import IdxSource, read_idx, write_idx
from .jsonl import JsonlSource
from .parquet import ParquetSource
from .sharded import ShardedDataset, Source, default_collate
from .tensors import TensorSource

__all__ = [
    "IdxSource",
    "JsonlSource",
    "ParquetSource",
    "ShardedDataset",
    "Source",
    "TensorSource",
    "default_collate",
    "read_idx",
    "write_idx",
]
