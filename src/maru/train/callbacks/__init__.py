"""The callbacks a Lightning user reaches for, under Lightning's names and arguments.

``EarlyStopping`` and ``ModelCheckpoint`` watch one metric of ``trainer.callback_metrics`` (reduced
over ranks, so every rank decides alike); ``LearningRateMonitor`` and ``ThroughputMonitor`` log
through the task's ``log``, so their values land in the same rows, loggers and
``callback_metrics`` as the run's own; ``ProfilerCallback`` writes a ``torch.profiler`` trace.
Each keeps what a restart needs in ``state_dict``, which the trainer saves in every checkpoint.
Nothing heavy is imported until a hook runs.
"""

from __future__ import annotations

from .early_stopping import EarlyStopping
from .lr_monitor import LearningRateMonitor
from .model_checkpoint import ModelCheckpoint
from .profiler import ProfilerCallback
from .throughput import ThroughputMonitor

__all__ = [
    "EarlyStopping",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ProfilerCallback",
    "ThroughputMonitor",
]
