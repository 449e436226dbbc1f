"""``ModelCheckpoint``: keep the best k checkpoints of a run by a monitored metric (and the last).

Each checkpoint is a complete maru checkpoint folder (``trainer.save_checkpoint``: model,
optimizers, schedulers, position, RNG, callbacks), written beside its final name and renamed into
place, so a crash leaves either the old set or the new one, never a torn checkpoint under a kept
name; :meth:`CheckpointManager.load <maru.train.checkpoint.CheckpointManager.load>` reads it.
A checkpoint that falls out of the best k is deleted only after the one that replaces it is in
place.
"""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import TrainError
from ..callback import Callback
from ._folder import folder_for
from ._monitor import Mode, better, check_mode, missing_message, read_metric

if TYPE_CHECKING:
    from ..task import Task

_FIELD = re.compile(r"\{([^{}:]+)(?::([^{}]*))?\}")
_SAVING = ".saving"


class ModelCheckpoint(Callback):
    """Save checkpoints during ``fit`` and keep the ``save_top_k`` best by ``monitor``.

    - When: every ``every_n_train_steps`` optimizer steps, or at the end of every
      ``every_n_epochs`` epochs, or — when neither is given — after each validation.
    - Which: with ``monitor`` (a key of ``trainer.callback_metrics``, e.g. ``"val_loss"``) and
      ``mode``, the ``save_top_k`` best (``-1``: all, ``0``: none); without ``monitor``, the newest
      ``save_top_k``. ``save_last`` also keeps the newest under ``last``.
    - Where: ``dirpath`` (default: ``run_dir/checkpoints``), each a folder named by ``filename``,
      a template such as ``"{epoch}-{step}-{val_loss:.3f}"`` that becomes
      ``epoch=2-step=300-val_loss=0.412`` (``auto_insert_metric_name=False``: ``2-300-0.412``).

    ``best_model_path``, ``best_model_score``, ``best_k_models`` (path → score),
    ``kth_best_model_path`` and ``last_model_path`` are Lightning's, and survive a checkpoint and
    resume of the run.
    """

    CHECKPOINT_NAME_LAST = "last"

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        mode: str = "min",
        save_top_k: int = 1,
        save_last: bool = False,
        every_n_train_steps: int | None = None,
        every_n_epochs: int | None = None,
        *,
        auto_insert_metric_name: bool = True,
        verbose: bool = False,
    ) -> None:
        if save_top_k < -1:
            raise TrainError(f"ModelCheckpoint(save_top_k={save_top_k}): use -1 (all), 0 or more")
        if every_n_train_steps is not None and every_n_epochs is not None:
            raise TrainError(
                "ModelCheckpoint: give every_n_train_steps or every_n_epochs, not both"
            )
        for name, value in (("every_n_train_steps", every_n_train_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and value < 1:
                raise TrainError(f"ModelCheckpoint({name}={value}): must be a positive integer")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.filename = filename or "{epoch}-{step}"
        self.monitor = monitor
        self.mode: Mode = check_mode("ModelCheckpoint", mode)
        self.save_top_k = save_top_k
        self.save_last = save_last
        self.every_n_train_steps = every_n_train_steps
        self.every_n_epochs = every_n_epochs
        self.auto_insert_metric_name = auto_insert_metric_name
        self.verbose = verbose
        self.best_k_models: dict[str, float] = {}
        self.best_model_path = ""
        self.kth_best_model_path = ""
        self.last_model_path = ""
        self._best_score: float | None = None
        self._last_saved_step = -1
        self._last_step_seen = -1
        self._fitting = False
        self._validated = False

    # ------------------------------------------------------------------------ reading
    @property
    def best_model_score(self) -> float | None:
        """The monitored value of ``best_model_path`` (None without ``monitor``)."""
        return self._best_score if self.monitor is not None else None

    @property
    def state_key(self) -> str:
        return f"ModelCheckpoint{{monitor={self.monitor!r}, mode={self.mode!r}, dirpath={str(self.dirpath)!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "dirpath": str(self.dirpath),
            "monitor": self.monitor,
            "best_k_models": dict(self.best_k_models),
            "best_model_path": self.best_model_path,
            "last_model_path": self.last_model_path,
            "last_saved_step": self._last_saved_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath") != str(self.dirpath):
            warnings.warn(
                f"ModelCheckpoint: the checkpoint's state is for {state_dict.get('dirpath')}, this "
                f"run saves to {self.dirpath}; its best checkpoints are not carried over",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        kept = state_dict.get("best_k_models", {})
        self.best_k_models = {p: float(s) for p, s in kept.items() if Path(p).is_dir()}
        last = state_dict.get("last_model_path", "")
        self.last_model_path = last if last and Path(last).is_dir() else ""
        self._last_saved_step = int(state_dict.get("last_saved_step", -1))
        self._update_best()

    # ------------------------------------------------------------------------ hooks
    def setup(self, trainer: Any, task: Task, stage: str) -> None:
        self._fitting = stage == "fit"
        self._validated = False
        if not self._fitting:
            return
        self.dirpath = folder_for("ModelCheckpoint", "checkpoints", self.dirpath, trainer, "checkpoints")
        if trainer.is_global_zero:
            self._remove_leftovers()

    def teardown(self, trainer: Any, task: Task, stage: str) -> None:
        self._fitting = False

    def on_train_batch_end(
        self, trainer: Any, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self.every_n_train_steps
        step = trainer.global_step
        if every is None or not self._fitting or step == self._last_step_seen:
            return  # a micro-batch of a step still accumulating, or nothing to do
        self._last_step_seen = step
        if step > 0 and step % every == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: Any, task: Task) -> None:
        every = self.every_n_epochs
        if every is not None and self._fitting and (trainer.current_epoch + 1) % every == 0:
            self.save(trainer)

    def on_validation_end(self, trainer: Any, task: Task) -> None:
        if not self._fitting:
            return
        self._validated = True
        if self.every_n_train_steps is None and self.every_n_epochs is None:
            self.save(trainer)

    # ------------------------------------------------------------------------ saving
    def save(self, trainer: Any) -> None:
        """Save now (collective: every rank calls it), keeping the best k and the last."""
        step = trainer.global_step
        if step == self._last_saved_step:
            return  # this step is saved already (a second trigger at the same step)
        score = self._score(trainer)
        if score is None:
            return
        if self.save_top_k != 0 and self._qualifies(score):
            self._save_top_k(trainer, score)
        if self.save_last:
            last = self._dir() / self.CHECKPOINT_NAME_LAST
            trainer.save_checkpoint(last)
            self.last_model_path = str(last)
        self._last_saved_step = step

    def _score(self, trainer: Any) -> float | None:
        """The monitored value (the step without ``monitor``: newer is better), or None to skip."""
        if self.monitor is None:
            return float(trainer.global_step)
        metrics = trainer.callback_metrics
        score = read_metric("ModelCheckpoint", metrics, self.monitor)
        if score is None:
            message = missing_message("ModelCheckpoint", self.monitor, metrics)
            if self._validated:
                raise TrainError(message)
            warnings.warn(message + "; no checkpoint saved at this step", RuntimeWarning, stacklevel=3)
        return score

    def _direction(self) -> Mode:
        return self.mode if self.monitor is not None else "max"

    def _qualifies(self, score: float) -> bool:
        k = self.save_top_k
        if k < 0 or len(self.best_k_models) < k:
            return True
        return better(self._direction(), score, self.best_k_models[self.kth_best_model_path])

    def _save_top_k(self, trainer: Any, score: float) -> None:
        path = self._new_path(trainer)
        trainer.save_checkpoint(path)
        self.best_k_models[str(path)] = score
        dropped = self._drop_beyond_k()
        self._update_best()
        if trainer.is_global_zero:
            for old in dropped:
                shutil.rmtree(old, ignore_errors=True)
        if self.verbose and trainer.is_global_zero:
            print(f"ModelCheckpoint: saved {path} ({self.monitor or 'step'} = {score:.6g})")

    def _drop_beyond_k(self) -> list[str]:
        """Forget the worst kept checkpoints beyond ``save_top_k``; their paths, to delete."""
        dropped: list[str] = []
        while 0 <= self.save_top_k < len(self.best_k_models):
            worst_path = max(self.best_k_models, key=self._badness)
            del self.best_k_models[worst_path]
            dropped.append(worst_path)
        return dropped

    def _badness(self, path: str) -> float:
        score = self.best_k_models[path]
        if math.isnan(score):
            return math.inf
        return score if self._direction() == "min" else -score

    def _update_best(self) -> None:
        if not self.best_k_models:
            self.best_model_path = self.kth_best_model_path = ""
            self._best_score = None
            return
        self.best_model_path = min(self.best_k_models, key=self._badness)
        self.kth_best_model_path = max(self.best_k_models, key=self._badness)
        self._best_score = self.best_k_models[self.best_model_path]

    # ------------------------------------------------------------------------ names
    def _dir(self) -> Path:
        assert self.dirpath is not None, "setup('fit') resolves dirpath"
        return self.dirpath

    def _new_path(self, trainer: Any) -> Path:
        """The folder for this save: the template filled in, with ``-v1``, ``-v2`` … when a folder
        of that name is there and is not one of this run's."""
        values: dict[str, Any] = dict(trainer.callback_metrics)
        values.update(epoch=trainer.current_epoch, step=trainer.global_step)
        name = self.format_checkpoint_name(self.filename, values, self.auto_insert_metric_name)
        path = self._dir() / name
        version = 0
        while path.exists() and str(path) not in self.best_k_models:
            version += 1
            path = self._dir() / f"{name}-v{version}"
        return path

    @staticmethod
    def format_checkpoint_name(template: str, values: dict[str, Any], auto_insert_metric_name: bool = True) -> str:
        """``"{epoch}-{val_loss:.3f}"`` with ``values`` → ``"epoch=2-val_loss=0.412"``; a metric not
        logged yet reads as 0. A ``/`` in a metric name becomes ``_`` (it would make a sub-folder)."""

        def fill(match: re.Match[str]) -> str:
            name, spec = match.group(1).strip(), match.group(2) or ""
            value = values.get(name, 0)
            item = getattr(value, "item", None)
            value = item() if callable(item) else value
            text = format(value, spec)
            label = name.replace("/", "_")
            return f"{label}={text}" if auto_insert_metric_name else text

        return _FIELD.sub(fill, template)

    def _remove_leftovers(self) -> None:
        """Staging folders of saves that died (``.NAME.saving``): never a kept checkpoint."""
        folder = self._dir()
        if folder.is_dir():
            for child in folder.iterdir():
                if child.name.startswith(".") and child.name.endswith(_SAVING) and child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
