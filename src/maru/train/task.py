"""The ``Task``: a model together with how to train it — the one class a user writes.

A task is an ``nn.Module`` with ``training_step(batch) -> loss`` (or a LightningModule's
``training_step(batch, batch_idx)``), an optional ``validation_step`` and ``configure_optimizers()``; hooks tell the trainer how to parallelize it (``parallelize`` for
tensor parallel, ``fsdp_units`` for FSDP2) and how to count work (``flops_per_step``,
``tokens_in``) for throughput and MFU.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TrainError

try:  # a real nn.Module base when torch is there; maru.train itself imports lazily
    from torch import nn

    _Module: Any = nn.Module
except ImportError:  # pragma: no cover - the train extra brings torch
    _Module = object

if TYPE_CHECKING:
    import torch
    from torch.distributed.device_mesh import DeviceMesh


class Task(_Module):  # type: ignore[misc]
    """Subclass and implement ``training_step`` and ``configure_optimizers``.

    ``training_step`` returns the loss tensor, or a dict with ``"loss"`` and other metrics.
    ``configure_optimizers`` returns an optimizer, ``(optimizer, scheduler)``, or
    ``{"optimizer": ..., "lr_scheduler": ...}``; the scheduler steps once per optimizer step.

    As in Lightning, ``training_step`` / ``validation_step`` may take ``(batch, batch_idx)`` — the
    batch's index in its epoch (or validation pass); each micro-batch counts under ``grad_accum`` —
    and ``self.global_step`` (optimizer steps taken) and ``self.current_epoch`` say where ``fit`` is.
    """

    def __init__(self) -> None:
        super().__init__()
        self._logged: dict[str, Any] = {}
        self._fit_position: Callable[[], tuple[int, int]] | tuple[int, int] = (0, 0)

    @property
    def global_step(self) -> int:
        """Optimizer steps taken by the running ``fit`` (the last one's, after it); Lightning's name."""
        return self._position()[0]

    @property
    def current_epoch(self) -> int:
        """The epoch the running ``fit`` is in (the last one's, after it); Lightning's name."""
        return self._position()[1]

    def _position(self) -> tuple[int, int]:
        source = self._fit_position
        return source() if callable(source) else source

    def _follow_position(self, source: Callable[[], tuple[int, int]] | tuple[int, int]) -> None:
        """Where ``global_step`` / ``current_epoch`` are read: the trainer's live run while ``fit``
        runs, the final (step, epoch) after it."""
        self._fit_position = source

    def training_step(self, batch: Any) -> torch.Tensor | dict[str, Any]:
        raise TrainError(f"{type(self).__name__} must implement training_step(batch) -> loss")

    def validation_step(self, batch: Any) -> torch.Tensor | dict[str, Any]:
        raise TrainError(
            f"validation data was given but {type(self).__name__} has no validation_step(batch)"
        )

    def configure_optimizers(self) -> Any:
        raise TrainError(
            f"{type(self).__name__} must implement configure_optimizers() -> optimizer, "
            "(optimizer, scheduler) or {'optimizer': ..., 'lr_scheduler': ...}"
        )

    def parallelize(self, mesh: DeviceMesh) -> None:
        """Apply a tensor-parallel plan over the 1-D ``tp`` mesh with ``parallelize_module``.
        Required by the ``tp`` and ``dp_tp`` strategies; the default has no plan."""
        raise TrainError(f"{type(self).__name__} has no tensor-parallel plan (parallelize(mesh))")

    def fsdp_units(self) -> list[Any]:
        """Submodules FSDP2 shards one by one (each gathers its weights just in time). Default: the
        items of every ``nn.ModuleList`` (transformer blocks, by convention)."""
        from torch import nn

        units: list[Any] = []
        for module in self.modules():
            if isinstance(module, nn.ModuleList):
                units.extend(module)
        return units

    def flops_per_step(self, batch: Any) -> float | None:
        """Floating-point operations of one training step on ``batch`` (forward + backward), for
        MFU. ``None`` leaves MFU out."""
        return None

    def tokens_in(self, batch: Any) -> int | None:
        """Tokens in ``batch``, for tokens/s. ``None`` leaves tokens/s out."""
        return None

    def on_fit_end(self) -> None:
        """Called on every rank when ``fit`` ends, while the process group is still up: the place
        for collective work such as gathering or exporting full weights."""

    def log(self, name: str, value: Any) -> None:
        """Report a metric (tensor or number). Read only at logging steps, so a tensor value costs
        no device sync on other steps."""
        self._logged[name] = value


def takes_batch_idx(task: Task, step: str) -> bool:
    """Whether the task's ``step`` method (``"training_step"`` …) takes ``(batch, batch_idx)`` as a
    LightningModule's does, rather than ``(batch)``. Read off the class, once per fit: wrappers a
    strategy puts on the instance (FSDP's) take ``*args`` whatever the task wrote."""
    try:
        params = list(inspect.signature(getattr(type(task), step)).parameters.values())[1:]  # less self
    except (TypeError, ValueError):  # a builtin or C-implemented callable: call it with the batch
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in params
    )


def split_optimizers(configured: Any) -> tuple[list[Any], list[Any]]:
    """Normalise what ``configure_optimizers`` returned to ``(optimizers, schedulers)``."""
    if isinstance(configured, dict):
        if "optimizer" not in configured:
            raise TrainError("configure_optimizers() returned a dict without an 'optimizer' key")
        scheduler = configured.get("lr_scheduler")
        if isinstance(scheduler, dict):  # Lightning's {"scheduler": ..., "interval": ...}
            scheduler = scheduler.get("scheduler")
        return [configured["optimizer"]], [scheduler] if scheduler is not None else []
    if isinstance(configured, (tuple, list)):
        if len(configured) != 2:
            raise TrainError(
                "configure_optimizers() returned a sequence; expected (optimizer, scheduler)"
            )
        return [configured[0]], [configured[1]] if configured[1] is not None else []
    if configured is None or not hasattr(configured, "step") or not hasattr(configured, "zero_grad"):
        raise TrainError(
            f"configure_optimizers() returned {type(configured).__name__}; expected an optimizer, "
            "(optimizer, scheduler) or {'optimizer': ..., 'lr_scheduler': ...}"
        )
    return [configured], []
