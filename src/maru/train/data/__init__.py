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

:meth:`ShardedDataset.loader` reads it in worker processes (:mod:`.workers`). Other data keeps its
place too (:func:`resumable`, :mod:`.resume`): a plain ``DataLoader`` resumes exactly mid-epoch
and gets a DistributedSampler under DDP (:class:`ResumableLoader`, :mod:`.loader_state`), an
iterable with the :class:`Stateful` protocol continues where it was, and :func:`hf_loader`
(:mod:`.hf`) reads Hugging Face datasets.

Importing this package does not import torch, numpy or pyarrow; each loads when first used.
"""

from __future__ import annotations

from .hf import hf_loader
from .idx import IdxSource, read_idx, write_idx
from .jsonl import JsonlSource
from .loader_state import ResumableLoader
from .parquet import ParquetSource
from .resume import Stateful, StatefulIterable, resumable
from .sharded import ShardedDataset, Source, default_collate
from .tensors import TensorSource
from .workers import ShardedLoader

__all__ = [
    "IdxSource",
    "JsonlSource",
    "ParquetSource",
    "ResumableLoader",
    "ShardedDataset",
    "ShardedLoader",
    "Source",
    "Stateful",
    "StatefulIterable",
    "TensorSource",
    "default_collate",
    "hf_loader",
    "read_idx",
    "resumable",
    "write_idx",
]
