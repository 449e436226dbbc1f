"""``EarlyStopping``: end ``fit`` when a monitored metric stops improving, reaches a goal,
diverges or stops being a finite number."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from ...errors import TrainError
from ..callback import Callback
from ._monitor import better, check_mode, missing_message, read_metric, worst

if TYPE_CHECKING:
    from ..task import Task


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` checks in a row (Lightning's arguments and meaning).

    A check happens at the end of each validation during ``fit`` (or, with
    ``check_on_train_epoch_end=True``, at the end of each training epoch). It also stops at once
    when the value reaches ``stopping_threshold`` (good enough), passes ``divergence_threshold``
    the wrong way (hopeless), or is NaN/infinite while ``check_finite``. The metric comes from
    ``trainer.callback_metrics``, which are reduced over ranks, so every rank stops together.
    ``strict``: a missing metric is an error (else a warning and no check). ``stopped_step`` /
    ``stopped_epoch`` and ``reason`` say what happened; best score and wait count survive a
    checkpoint and resume.
    """

    def __init__(
        self,
        monitor: str,
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        *,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_finite: bool = True,
        check_on_train_epoch_end: bool = False,
        strict: bool = True,
        verbose: bool = False,
    ) -> None:
        if patience < 0:
            raise TrainError(f"EarlyStopping(patience={patience}): patience must be >= 0")
        self.monitor = monitor
        self.mode = check_mode("EarlyStopping", mode)
        self.patience = patience
        self.min_delta = abs(min_delta)
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.check_finite = check_finite
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self.strict = strict
        self.verbose = verbose
        self.best_score = worst(self.mode)
        self.wait_count = 0
        self.stopped_step = 0
        self.stopped_epoch = 0
        self.reason: str | None = None
        self._fitting = False

    @property
    def state_key(self) -> str:
        return f"EarlyStopping{{monitor={self.monitor!r}, mode={self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "wait_count": self.wait_count,
            "stopped_step": self.stopped_step,
            "stopped_epoch": self.stopped_epoch,
            "patience": self.patience,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict["best_score"])
        self.wait_count = int(state_dict["wait_count"])
        self.stopped_step = int(state_dict.get("stopped_step", 0))
        self.stopped_epoch = int(state_dict.get("stopped_epoch", 0))

    # ------------------------------------------------------------------------ hooks
    def setup(self, trainer: Any, task: Task, stage: str) -> None:
        self._fitting = stage == "fit"

    def teardown(self, trainer: Any, task: Task, stage: str) -> None:
        self._fitting = False

    def on_validation_end(self, trainer: Any, task: Task) -> None:
        if self._fitting and not self.check_on_train_epoch_end:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: Any, task: Task) -> None:
        if self._fitting and self.check_on_train_epoch_end:
            self.check(trainer)

    # ------------------------------------------------------------------------ the check
    def check(self, trainer: Any) -> None:
        """Read the monitored value and set ``trainer.should_stop`` when one of the rules says so."""
        score = read_metric("EarlyStopping", trainer.callback_metrics, self.monitor)
        if score is None:
            message = missing_message("EarlyStopping", self.monitor, trainer.callback_metrics)
            if self.strict:
                raise TrainError(message + " (or pass strict=False)")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            return
        reason = self._evaluate(score)
        if reason is not None:
            self.reason = reason
            self.stopped_step, self.stopped_epoch = trainer.global_step, trainer.current_epoch
            trainer.should_stop = True
            if self.verbose and trainer.is_global_zero:
                print(f"EarlyStopping at step {self.stopped_step}: {reason}")

    def _evaluate(self, score: float) -> str | None:
        """Update best score and wait count with ``score``; the reason to stop, or None."""
        name = self.monitor
        if self.check_finite and not math.isfinite(score):
            return f"{name} = {score} is not finite; the best was {self.best_score:.6g}"
        if self.stopping_threshold is not None and better(self.mode, score, self.stopping_threshold):
            return f"{name} = {score:.6g} reached the stopping threshold {self.stopping_threshold}"
        if self.divergence_threshold is not None and better(
            self.mode, self.divergence_threshold, score
        ):
            return (
                f"{name} = {score:.6g} is past the divergence threshold "
                f"{self.divergence_threshold}: training diverged"
            )
        if better(self.mode, score, self.best_score, self.min_delta):
            self.best_score = score
            self.wait_count = 0
            return None
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return (
                f"{name} did not improve by more than {self.min_delta} in the last "
                f"{self.wait_count} checks; the best was {self.best_score:.6g}"
            )
        return None
