"""What ``configure_optimizers`` returns, read the way Lightning reads it, and when each scheduler
steps.

Accepted: an optimizer; ``(optimizer, scheduler)``; a list or tuple of optimizers;
``([optimizers], [schedulers])``; ``{"optimizer": ..., "lr_scheduler": ...}`` where the scheduler
is a scheduler or ``{"scheduler", "interval": "step" | "epoch", "frequency", "monitor"}``; a list
or tuple of such dicts. Anything else is a :class:`~maru.errors.TrainError` that says what was
expected — never a guess (a list of two optimizers is two optimizers, not an optimizer and its
scheduler).

When a scheduler steps: as Lightning says for Lightning's forms — every epoch unless its dict
says ``"interval": "step"``; maru's own shorthand ``(optimizer, scheduler)`` (a pair, which
Lightning does not accept) steps its scheduler every optimizer step, as it always has.

A ``ReduceLROnPlateau`` needs ``monitor``: it is stepped with that metric (a validation metric or
one logged with ``self.log``) and a missing one is an error that names the metrics there are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import TrainError

EXPECTED = (
    "expected an optimizer, (optimizer, scheduler), a list of optimizers, "
    "([optimizers], [schedulers]), {'optimizer': ..., 'lr_scheduler': ...} or a list of such dicts"
)
_SCHEDULER_KEYS = {"scheduler", "interval", "frequency", "monitor", "strict", "name"}


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """One scheduler and when it steps: every ``frequency`` optimizer steps (``interval="step"``)
    or epochs (``"epoch"``); with ``monitor``, stepped with that metric's latest value."""

    scheduler: Any
    interval: str = "step"
    frequency: int = 1
    monitor: str | None = None
    strict: bool = True
    name: str | None = None


@dataclass(slots=True)
class Optimization:
    """The optimizers and scheduler configs of one run, in the order the task gave them."""

    optimizers: list[Any]
    configs: list[SchedulerConfig] = field(default_factory=list)

    @property
    def schedulers(self) -> list[Any]:
        """The scheduler objects (what checkpoints save and ``trainer.lr_schedulers`` lists)."""
        return [config.scheduler for config in self.configs]

    def per_step(self) -> list[SchedulerConfig]:
        return [c for c in self.configs if c.interval == "step"]

    def per_epoch(self) -> list[SchedulerConfig]:
        return [c for c in self.configs if c.interval == "epoch"]


def read_optimization(configured: Any) -> Optimization:
    """Normalise what ``configure_optimizers`` returned (see the module docstring)."""
    if _is_optimizer(configured):
        return Optimization([configured])
    if isinstance(configured, Mapping):
        return _from_dicts([configured])
    if isinstance(configured, (list, tuple)) and configured:
        return _from_sequence(configured)
    raise TrainError(f"configure_optimizers() returned {_describe(configured)}; {EXPECTED}")


def _from_sequence(items: Sequence[Any]) -> Optimization:
    if all(isinstance(item, Mapping) for item in items):
        return _from_dicts(items)
    if all(_is_optimizer(item) for item in items):
        return Optimization(list(items))
    if len(items) == 2 and isinstance(items[0], (list, tuple)) and isinstance(items[1], (list, tuple)):
        optimizers = list(items[0])
        if optimizers and all(_is_optimizer(opt) for opt in optimizers):
            return Optimization(optimizers, [_scheduler_config(s, "epoch") for s in items[1]])
    if len(items) == 2 and _is_optimizer(items[0]) and _is_scheduler(items[1]):
        return Optimization([items[0]], [_scheduler_config(items[1], "step")])
    kinds = ", ".join(_describe(item) for item in items)
    raise TrainError(f"configure_optimizers() returned a sequence of ({kinds}); {EXPECTED}")


def _from_dicts(dicts: Sequence[Mapping[str, Any]]) -> Optimization:
    optimization = Optimization([])
    for entry in dicts:
        if "optimizer" not in entry or not _is_optimizer(entry["optimizer"]):
            raise TrainError(
                "configure_optimizers() returned a dict without an optimizer under 'optimizer' "
                f"(keys: {sorted(entry)}); {EXPECTED}"
            )
        optimization.optimizers.append(entry["optimizer"])
        scheduler = entry.get("lr_scheduler")
        if scheduler is not None:
            optimization.configs.append(_scheduler_config(scheduler, "epoch", entry.get("monitor")))
    return optimization


def _scheduler_config(scheduler: Any, interval: str, monitor: str | None = None) -> SchedulerConfig:
    """A scheduler, or Lightning's ``{"scheduler": ..., "interval": ...}`` dict, as a config;
    ``interval`` is the default of the form it came in."""
    if isinstance(scheduler, Mapping):
        unknown = set(scheduler) - _SCHEDULER_KEYS
        if "scheduler" not in scheduler or unknown:
            raise TrainError(
                f"an lr_scheduler dict needs 'scheduler' and may have {sorted(_SCHEDULER_KEYS - {'scheduler'})}"
                f"; got keys {sorted(scheduler)}"
            )
        options = dict(scheduler)
        inner = options.pop("scheduler")
        options.setdefault("monitor", monitor)
        options.setdefault("interval", interval)
        config = SchedulerConfig(inner, **options)
    else:
        config = SchedulerConfig(scheduler, interval=interval, monitor=monitor)
    _check(config)
    return config


def _check(config: SchedulerConfig) -> None:
    if not _is_scheduler(config.scheduler):
        raise TrainError(
            f"{_describe(config.scheduler)} is not a learning-rate scheduler (it has no step() "
            "and no optimizer); return schedulers from torch.optim.lr_scheduler"
        )
    if config.interval not in ("step", "epoch"):
        raise TrainError(f"a scheduler's interval must be 'step' or 'epoch', not {config.interval!r}")
    if not isinstance(config.frequency, int) or config.frequency < 1:
        raise TrainError(f"a scheduler's frequency must be a positive integer, not {config.frequency!r}")
    if needs_metric(config.scheduler) and not config.monitor:
        raise TrainError(
            f"{type(config.scheduler).__name__} steps with a metric: return "
            "{'optimizer': opt, 'lr_scheduler': {'scheduler': sched, 'monitor': 'val_loss'}} "
            "naming the metric to monitor"
        )


def needs_metric(scheduler: Any) -> bool:
    """ReduceLROnPlateau (and its subclasses) step with a metric value."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    return isinstance(scheduler, ReduceLROnPlateau)


def step_schedulers(
    configs: Sequence[SchedulerConfig], count: int, metrics: Callable[[], Mapping[str, float]]
) -> None:
    """Step each of ``configs`` whose ``frequency`` divides ``count`` (steps or epochs done); a
    monitoring one gets its metric from ``metrics()``."""
    for config in configs:
        if count % config.frequency:
            continue
        if config.monitor is None:
            config.scheduler.step()
            continue
        available = metrics()
        if config.monitor in available:
            config.scheduler.step(available[config.monitor])
        elif config.strict:
            names = ", ".join(sorted(available)) or "none yet"
            raise TrainError(
                f"{type(config.scheduler).__name__} monitors {config.monitor!r}, which was not "
                f"logged; the metrics there are: {names}. Log it with self.log "
                "(or return it from validation_step), or set 'strict': False to skip the step"
            )


def _is_optimizer(value: Any) -> bool:
    return hasattr(value, "step") and hasattr(value, "zero_grad") and hasattr(value, "param_groups")


def _is_scheduler(value: Any) -> bool:
    return hasattr(value, "step") and hasattr(value, "optimizer") and not hasattr(value, "param_groups")


def _describe(value: Any) -> str:
    return "None" if value is None else type(value).__name__
