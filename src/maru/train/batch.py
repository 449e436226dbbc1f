"""Batches as the loop sees them: moved to the device, counted in samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in ``batch`` (nested dicts, tuples, lists) moved to ``device`` without blocking."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: move_to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def batch_size_of(batch: Any) -> int:
    """The number of samples in ``batch``: the first dimension of its first tensor (1 if none)."""
    import torch

    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        for value in batch.values():
            return batch_size_of(value)
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    return 1
