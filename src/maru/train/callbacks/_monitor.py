"""What ``EarlyStopping`` and ``ModelCheckpoint`` share: one monitored metric, a direction, and
reading it from ``trainer.callback_metrics``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from ...errors import TrainError

Mode = Literal["min", "max"]


def check_mode(owner: str, mode: str) -> Mode:
    if mode not in ("min", "max"):
        raise TrainError(f"{owner}(mode={mode!r}): use mode='min' (lower is better) or 'max'")
    return mode  # type: ignore[return-value]


def better(mode: Mode, score: float, reference: float, min_delta: float = 0.0) -> bool:
    """Whether ``score`` beats ``reference`` by more than ``min_delta`` in direction ``mode``.
    NaN never beats anything; anything finite beats NaN."""
    if math.isnan(score):
        return False
    if math.isnan(reference):
        return True
    return score < reference - min_delta if mode == "min" else score > reference + min_delta


def worst(mode: Mode) -> float:
    """The score every real score beats."""
    return math.inf if mode == "min" else -math.inf


def read_metric(owner: str, metrics: Mapping[str, Any], monitor: str) -> float | None:
    """The monitored value as a float, or None when the run has not logged it (yet)."""
    value = metrics.get(monitor)
    if value is None:
        return None
    try:
        item = getattr(value, "item", None)
        return float(item() if callable(item) else value)
    except (TypeError, ValueError) as exc:
        raise TrainError(f"{owner}: metric {monitor!r} is {value!r}, not a number") from exc


def missing_message(owner: str, monitor: str, metrics: Mapping[str, Any]) -> str:
    available = ", ".join(sorted(metrics)) or "none yet"
    return (
        f"{owner}(monitor={monitor!r}) found no metric {monitor!r} (logged: {available}); log it "
        "(self.log in training_step / validation_step, or return it in the step's dict) or "
        "monitor one of those"
    )
