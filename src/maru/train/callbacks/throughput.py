"""``ThroughputMonitor``: samples/s, tokens/s and MFU of the training steps alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..callback import Callback

if TYPE_CHECKING:
    from ..task import Task

PREFIX = "throughput/"


class ThroughputMonitor(Callback):
    """Log ``throughput/samples_per_s``, ``throughput/tokens_per_s`` (when the task's
    ``tokens_in`` or ``length_fn`` counts tokens) and ``throughput/mfu`` (when the task's
    ``flops_per_step`` gives FLOPs and the device's peak is known or ``peak_flops`` is given), each
    over the window since the last logging step, plus the per-device ``throughput/device/…``.

    Unlike the trainer's own ``samples_per_s``, the clock stops while validation runs, so the
    figures are the training steps' (data loading included). Global figures are this rank's times
    the data-parallel size (``world_size // tp_size``). ``batch_size_fn(batch)`` counts samples
    (default: the batch's first dimension). On a GPU the window ends with one synchronisation,
    at logging steps only.
    """

    def __init__(
        self,
        batch_size_fn: Callable[[Any], int] | None = None,
        length_fn: Callable[[Any], int | None] | None = None,
        *,
        peak_flops: float | None = None,
    ) -> None:
        self.batch_size_fn = batch_size_fn
        self.length_fn = length_fn
        self.peak_flops = peak_flops
        self.figures: dict[str, float] = {}
        self._reset(0.0)
        self._paused_at: float | None = None
        self._device: Any = None
        self._step_seen = 0

    def _reset(self, now: float) -> None:
        self._since = now
        self._samples = 0
        self._tokens: int | None = None
        self._flops: float | None = None

    # ------------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: Any, task: Task) -> None:
        from ..metrics import peak_flops_for

        self._device = next((p.device for p in task.parameters()), None)
        if self.peak_flops is None:
            try:
                self.peak_flops = peak_flops_for(self._device, trainer.config.precision)
            except ValueError:  # a precision the peak table does not name: no MFU
                self.peak_flops = None
        self._step_seen = trainer.global_step
        self._reset(time.perf_counter())

    def on_train_batch_end(
        self, trainer: Any, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        ended_step = step != self._step_seen  # the last micro-batch of an optimizer step
        self._step_seen = step
        self._count(task, batch, ended_step)
        if ended_step and step % trainer.config.log_every == 0:
            self.figures = self._window(trainer)
            for name, value in self.figures.items():
                task.log(name, value, on_step=True, on_epoch=False)

    def on_validation_start(self, trainer: Any, task: Task) -> None:
        self._paused_at = time.perf_counter()

    def on_validation_end(self, trainer: Any, task: Task) -> None:
        if self._paused_at is not None:
            self._since += time.perf_counter() - self._paused_at
            self._paused_at = None

    # ------------------------------------------------------------------------ counting
    def _count(self, task: Task, batch: Any, ended_step: bool) -> None:
        """One micro-batch: its samples and tokens; at a step's end, the step's FLOPs
        (``flops_per_step`` counts a whole optimizer step, as the trainer reads it)."""
        from ..batch import batch_size_of

        self._samples += self.batch_size_fn(batch) if self.batch_size_fn else batch_size_of(batch)
        tokens = self.length_fn(batch) if self.length_fn else task.tokens_in(batch)
        if tokens is not None:
            self._tokens = (self._tokens or 0) + int(tokens)
        flops = task.flops_per_step(batch) if ended_step else None
        if flops is not None:
            self._flops = (self._flops or 0.0) + float(flops)

    def _window(self, trainer: Any) -> dict[str, float]:
        _sync(self._device)
        now = time.perf_counter()
        elapsed = max(now - self._since, 1e-12)
        dp = _data_parallel_size(trainer)
        figures = {f"{PREFIX}device/samples_per_s": self._samples / elapsed}
        if self._tokens is not None:
            figures[f"{PREFIX}device/tokens_per_s"] = self._tokens / elapsed
        if self._flops is not None:
            figures[f"{PREFIX}device/flops_per_s"] = self._flops / elapsed
            if self.peak_flops:
                figures[f"{PREFIX}mfu"] = self._flops / elapsed / self.peak_flops
        for name in ("samples_per_s", "tokens_per_s"):
            local = figures.get(f"{PREFIX}device/{name}")
            if local is not None:
                figures[f"{PREFIX}{name}"] = local * dp
        self._reset(now)
        return figures


def _data_parallel_size(trainer: Any) -> int:
    world = int(trainer.world_size)
    config = trainer.config
    tp = config.tp_size or (world if config.strategy == "tp" else 1)
    return max(world // tp, 1)


def _sync(device: Any) -> None:
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.synchronize(device)
