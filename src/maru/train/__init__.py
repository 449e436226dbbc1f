"""Training: a ``Task`` (model + how to train it), a ``Trainer`` that runs it on one process or
many (DDP, FSDP2, tensor parallel, dp × tp), sharded resumable data, checkpoints, loggers.

Names load lazily, so ``import maru.train`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module (relative to maru.train) that defines it.
_LAZY: dict[str, str] = {
    "Task": ".task",
    "Trainer": ".trainer",
    "FitResult": ".trainer",
    "seed_everything": ".trainer",
    "DistEnv": ".dist",
    "Preempted": ".dist",
    "PREEMPTED_EXIT_CODE": ".dist",
    "parse_hostlist": ".dist",
    "Strategy": ".strategies",
    "DDP": ".strategies",
    "FSDP": ".strategies",
    "TP": ".strategies",
    "DPxTP": ".strategies",
    "ShardedDataset": ".data",
    "TensorSource": ".data",
    "JsonlSource": ".data",
    "ParquetSource": ".data",
    "IdxSource": ".data",
    "CheckpointManager": ".checkpoint",
    "export_safetensors": ".checkpoint",
    "CSVLogger": ".loggers",
    "TensorBoardLogger": ".loggers",
    "ThroughputMeter": ".metrics",
    "ProgressBar": ".progress",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'maru.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
