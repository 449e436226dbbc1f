"""The ``Task``: a model together with how to train it — the one class a user writes.

A task is an ``nn.Module`` with ``training_step(batch) -> loss``, an optional ``validation_step``
and ``configure_optimizers()``; hooks tell the trainer how to parallelize it (``parallelize`` for
tensor parallel, ``fsdp_units`` for FSDP2) and how to count work (``flops_per_step``,
``tokens_in``) for throughput and MFU.
"""

from __future__ import annotations

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
    """

    def __init__(self) -> None:
        super().__init__()
        self._logged: dict[str, Any] = {}

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
