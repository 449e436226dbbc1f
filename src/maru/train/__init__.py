"""Training: a ``Task`` (model + how to train it), a ``Trainer`` that runs it on one process or
many (DDP, FSDP2, tensor parallel, dp × tp), sharded resumable data, checkpoints, loggers.

Names load lazily, so ``import maru.train`` does not import torch.
"""

from __future__ import annotations

from typing import Any

from .. import _lazy

# name -> module (relative to maru.train) that defines it.
_LAZY: dict[str, str] = {
    "Task": ".task",
    "Trainer": ".trainer",
    "Callback": ".callback",
    "DataModule": ".datamodule",
    "TrainerConfig": ".config",
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
    "MLflowLogger": ".loggers",
    "EarlyStopping": ".callbacks",
    "ModelCheckpoint": ".callbacks",
    "LearningRateMonitor": ".callbacks",
    "ThroughputMonitor": ".callbacks",
    "ProfilerCallback": ".callbacks",
    "ThroughputMeter": ".metrics",
    "ProgressBar": ".progress",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
