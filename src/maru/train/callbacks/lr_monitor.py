"""``LearningRateMonitor``: the learning rate of every parameter group of every optimizer."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ...errors import TrainError
from ..callback import Callback

if TYPE_CHECKING:
    from ..task import Task


class LearningRateMonitor(Callback):
    """Log ``lr-<Optimizer>`` (one group) or ``lr-<Optimizer>/pg<i>`` (several), with ``-<n>``
    after the class name for a second optimizer of the same class — Lightning's names.

    ``logging_interval="step"`` logs at the trainer's logging steps (``log_every``), in the same
    rows as the loss; ``"epoch"`` logs the rate each epoch started with. ``log_momentum`` adds
    ``momentum-…`` (SGD's momentum or Adam's beta1), ``log_weight_decay`` adds ``weight_decay-…``.
    """

    def __init__(
        self,
        logging_interval: str = "step",
        log_momentum: bool = False,
        log_weight_decay: bool = False,
    ) -> None:
        if logging_interval not in ("step", "epoch"):
            raise TrainError(
                f"LearningRateMonitor(logging_interval={logging_interval!r}): use 'step' or 'epoch'"
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.last: dict[str, float] = {}

    def on_train_batch_end(
        self, trainer: Any, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.logging_interval == "step" and step > 0 and step % trainer.config.log_every == 0:
            self._log(trainer, task, on_step=True)

    def on_train_epoch_start(self, trainer: Any, task: Task) -> None:
        if self.logging_interval == "epoch":
            self._log(trainer, task, on_step=False)

    def _log(self, trainer: Any, task: Task, *, on_step: bool) -> None:
        values = self.rates(trainer.optimizers)
        self.last = values
        for name, value in values.items():
            task.log(name, value, on_step=on_step, on_epoch=not on_step, batch_size=1)

    def rates(self, optimizers: list[Any]) -> dict[str, float]:
        """``{name: value}`` for every optimizer's every parameter group."""
        values: dict[str, float] = {}
        for prefix, optimizer in zip(optimizer_names(optimizers), optimizers, strict=True):
            groups = optimizer.param_groups
            for i, group in enumerate(groups):
                suffix = f"/pg{i + 1}" if len(groups) > 1 else ""
                values[f"lr-{prefix}{suffix}"] = float(group["lr"])
                if self.log_momentum:
                    momentum = _momentum(group)
                    if momentum is not None:
                        values[f"momentum-{prefix}{suffix}"] = momentum
                if self.log_weight_decay and "weight_decay" in group:
                    values[f"weight_decay-{prefix}{suffix}"] = float(group["weight_decay"])
        return values


def optimizer_names(optimizers: list[Any]) -> list[str]:
    """Each optimizer's class name, ``-1``, ``-2`` … added to the second and later of a class."""
    seen: Counter[str] = Counter()
    names = []
    for optimizer in optimizers:
        base = type(optimizer).__name__
        names.append(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return names


def _momentum(group: dict[str, Any]) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    if "momentum" in group:
        return float(group["momentum"])
    return None
