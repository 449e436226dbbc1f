"""One pass of validation, testing or prediction over some data, with its hooks and metrics.

``fit`` runs a validation pass at its boundaries; ``Trainer.validate`` / ``test`` / ``predict`` run
one on their own. A pass puts the task in eval mode under ``no_grad`` and the precision's forward
context, and puts back the training mode, the ``self.log`` target and every RNG state afterwards,
so evaluating never changes the training run.

Metrics of a pass: the mean of what each ``*_step`` returned (a loss, or a dict of values), named
``val_<name>`` / ``test_<name>`` and reduced over ranks, beside the batch-size-weighted means of
what it logged with ``self.log`` (see :mod:`maru.train.logged`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import TrainError
from .batch import move_to_device
from .logged import StageLog

if TYPE_CHECKING:
    import torch

    from .dist import DistEnv
    from .hooks import Hooks
    from .precision import Precision
    from .strategies import Strategy
    from .task import Task


@dataclass(frozen=True, slots=True)
class Stage:
    """What names a stage's step method, hooks and metrics."""

    name: str  # "validate", "test", "predict"
    step: str  # the task's method
    hook: str  # the middle of its hook names: on_<hook>_start …
    prefix: str  # of the metrics its steps return


STAGES = {
    "validate": Stage("validate", "validation_step", "validation", "val"),
    "test": Stage("test", "test_step", "test", "test"),
    "predict": Stage("predict", "predict_step", "predict", ""),
}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a task runs: as the strategy prepared it, on which device, in which precision."""

    task: Task
    strategy: Strategy
    precision: Precision
    device: torch.device
    env: DistEnv

    def reduce(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Sum over ranks, or ``None`` in one process."""
        return self.strategy.all_reduce_sum if self.env.world_size > 1 else None


def require_step(task: Task, stage: Stage) -> None:
    """A clear error when the task lacks the stage's step method."""
    from .task import Task

    method = getattr(type(task), stage.step, None)
    if method is None or method is getattr(Task, stage.step, None):
        raise TrainError(
            f"{stage.name}() needs {type(task).__name__}.{stage.step}(batch, batch_idx); "
            "implement it on the task"
        )


def run_pass(
    place: Placement,
    hooks: Hooks,
    stage: Stage,
    data: Iterable[Any],
    *,
    call: Callable[..., Any],
    pass_batch_idx: bool,
    limit: int | None,
    publish: Callable[[dict[str, float]], None],
) -> dict[str, float] | list[Any]:
    """Run ``call`` over ``data`` (at most ``limit`` batches); returns the pass's metrics (published
    with ``publish`` before the epoch-end callbacks run), or the predictions of a predict pass."""
    import torch

    from .checkpoint import capture_rng, restore_rng

    task = place.task
    log = StageLog(stage.name, on_step=False, on_epoch=True)
    sink, task._log_sink = task._log_sink, log
    was_training = task.training
    rng = capture_rng()
    task.eval()
    try:
        hooks.call(f"on_{stage.hook}_start")
        hooks.call(f"on_{stage.hook}_epoch_start")
        with torch.no_grad(), place.precision.forward_context():
            returned = _steps(place, hooks, stage, data, call, pass_batch_idx, limit, log)
        if stage.name == "predict":
            hooks.call(f"on_{stage.hook}_epoch_end")
            hooks.call(f"on_{stage.hook}_end")
            return returned
        log.in_epoch_hook = True
        hooks.call_task(f"on_{stage.hook}_epoch_end")
        metrics = _reduced_returns(place, stage, returned)
        metrics.update(log.epoch_values(place.reduce()))
        publish(metrics)
        hooks.call_callbacks(f"on_{stage.hook}_epoch_end")
        hooks.call(f"on_{stage.hook}_end")
        return metrics
    finally:
        task.train(was_training)
        task._log_sink = sink
        restore_rng(rng)


def _steps(
    place: Placement,
    hooks: Hooks,
    stage: Stage,
    data: Iterable[Any],
    call: Callable[..., Any],
    pass_batch_idx: bool,
    limit: int | None,
    log: StageLog,
) -> Any:
    """The batches of one pass: predictions (predict), or ``(names, totals, count)`` of what the
    steps returned."""
    import torch

    start, end = f"on_{stage.hook}_batch_start", f"on_{stage.hook}_batch_end"
    watch_start, watch_end = hooks.has(start), hooks.has(end)
    move = place.device.type != "cpu"
    predictions: list[Any] = []
    names: list[str] = []
    totals: torch.Tensor | None = None
    count = 0
    batches = islice(data, limit) if limit is not None else data
    for batch_idx, batch in enumerate(batches):
        if move:
            batch = move_to_device(batch, place.device)
        log.batch = batch
        if watch_start:
            hooks.call(start, batch, batch_idx)
        out = call(batch, batch_idx) if pass_batch_idx else call(batch)
        if stage.name == "predict":
            predictions.append(out)
        elif out is not None:
            items = out if isinstance(out, dict) else {"loss": out}
            if totals is None:
                names = sorted(items)
                totals = torch.zeros(len(names), device=place.device)
            totals += torch.stack(
                [torch.as_tensor(items[n]).detach().float().reshape(()).to(place.device) for n in names]
            )
            count += 1
        if watch_end:
            hooks.call(end, out, batch, batch_idx)
    return predictions if stage.name == "predict" else (names, totals, count)


def _reduced_returns(place: Placement, stage: Stage, returned: Any) -> dict[str, float]:
    """Means of what the steps returned, over batches and ranks, as ``<prefix>_<name>``. Every
    rank joins the reduction, even one whose steps returned nothing (its count is 0)."""
    import torch

    names, totals, count = returned
    reduce = place.reduce()
    if reduce is None and totals is None:
        return {}
    if totals is None:
        names, totals = ["loss"], torch.zeros(1, device=place.device)
    packed = torch.cat([totals, torch.tensor([float(count)], device=place.device)])
    if reduce is not None:
        reduce(packed)
    values = packed.tolist()
    if values[-1] == 0:
        return {}
    return {
        f"{stage.prefix}_{name}": value / values[-1]
        for name, value in zip(names, values[:-1], strict=True)
    }
