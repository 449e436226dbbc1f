"""``Callback``: code that watches or steers a run from outside the task, under Lightning's names.

Subclass it and override the hooks you need; the rest are no-ops. The trainer calls a hook only on
the callbacks that override it (see :mod:`maru.train.hooks`), so a callback that only watches
validation adds nothing to a training step. Every hook gets the trainer and the task first, as in
Lightning, so a Lightning callback ports by changing its base class and imports.

A callback that keeps state across a restart (the best score so far, a patience count) returns it
from ``state_dict`` and takes it back in ``load_state_dict``; the trainer saves it in each
checkpoint under ``state_key`` and hands it back on resume. ``trainer.should_stop = True`` (from any
hook) ends ``fit`` cleanly at the end of the current step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task import Task
    from .trainer import Trainer


class Callback:
    """Base class for trainer callbacks: every hook is a no-op until overridden.

    ``stage`` (in ``setup`` / ``teardown``) is ``"fit"``, ``"validate"``, ``"test"`` or
    ``"predict"``. Batch hooks get ``batch_idx`` — the batch's index in its epoch or pass.
    """

    @property
    def state_key(self) -> str:
        """The key this callback's state is saved under in a checkpoint: its class name, which
        is unique unless two callbacks of one class are used (then override this)."""
        return type(self).__qualname__

    # ------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """What to save in a checkpoint so that a resumed run carries on (empty: nothing)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take back what ``state_dict`` returned, when a run resumes from a checkpoint."""

    # ------------------------------------------------------------------ whole run
    def setup(self, trainer: Trainer, task: Task, stage: str) -> None:
        """Before ``fit`` / ``validate`` / ``test`` / ``predict`` starts, on every rank."""

    def teardown(self, trainer: Trainer, task: Task, stage: str) -> None:
        """After it ended (also after an error), on every rank."""

    def on_fit_start(self, trainer: Trainer, task: Task) -> None:
        """``fit`` is set up (strategy, optimizers, checkpoint loaded) and about to train."""

    def on_fit_end(self, trainer: Trainer, task: Task) -> None:
        """``fit`` finished training, the final validation and the last checkpoint."""

    def on_exception(self, trainer: Trainer, task: Task, exception: BaseException) -> None:
        """A run ended with an exception (preemption included); it is raised again afterwards."""

    # --------------------------------------------------------------------- training
    def on_train_start(self, trainer: Trainer, task: Task) -> None:
        """The training loop starts."""

    def on_train_end(self, trainer: Trainer, task: Task) -> None:
        """The training loop ended (before the final validation and save)."""

    def on_train_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """An epoch over the training data starts."""

    def on_train_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """An epoch over the training data ended."""

    def on_train_batch_start(self, trainer: Trainer, task: Task, batch: Any, batch_idx: int) -> None:
        """Before ``training_step`` on one (micro-)batch."""

    def on_train_batch_end(
        self, trainer: Trainer, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """After one (micro-)batch's forward and backward; ``outputs`` is what ``training_step``
        returned."""

    def on_before_optimizer_step(self, trainer: Trainer, task: Task, optimizer: Any) -> None:
        """Gradients are in (and unscaled, clipped); ``optimizer`` is about to step."""

    # ------------------------------------------------------------------- validation
    def on_validation_start(self, trainer: Trainer, task: Task) -> None:
        """A validation pass starts."""

    def on_validation_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """A validation pass starts (after ``on_validation_start``)."""

    def on_validation_batch_start(
        self, trainer: Trainer, task: Task, batch: Any, batch_idx: int
    ) -> None:
        """Before ``validation_step`` on one batch."""

    def on_validation_batch_end(
        self, trainer: Trainer, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """After ``validation_step`` on one batch."""

    def on_validation_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """A validation pass ended; ``trainer.callback_metrics`` holds its (reduced) metrics."""

    def on_validation_end(self, trainer: Trainer, task: Task) -> None:
        """After ``on_validation_epoch_end``: the place to act on the metrics (stop, checkpoint)."""

    # ------------------------------------------------------------------------- test
    def on_test_start(self, trainer: Trainer, task: Task) -> None:
        """``test`` starts."""

    def on_test_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """The test pass starts."""

    def on_test_batch_start(self, trainer: Trainer, task: Task, batch: Any, batch_idx: int) -> None:
        """Before ``test_step`` on one batch."""

    def on_test_batch_end(
        self, trainer: Trainer, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """After ``test_step`` on one batch."""

    def on_test_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """The test pass ended; ``trainer.callback_metrics`` holds its metrics."""

    def on_test_end(self, trainer: Trainer, task: Task) -> None:
        """``test`` ended."""

    # ---------------------------------------------------------------------- predict
    def on_predict_start(self, trainer: Trainer, task: Task) -> None:
        """``predict`` starts."""

    def on_predict_epoch_start(self, trainer: Trainer, task: Task) -> None:
        """The prediction pass starts."""

    def on_predict_batch_start(
        self, trainer: Trainer, task: Task, batch: Any, batch_idx: int
    ) -> None:
        """Before ``predict_step`` on one batch."""

    def on_predict_batch_end(
        self, trainer: Trainer, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """After ``predict_step`` on one batch; ``outputs`` is its prediction."""

    def on_predict_epoch_end(self, trainer: Trainer, task: Task) -> None:
        """The prediction pass ended."""

    def on_predict_end(self, trainer: Trainer, task: Task) -> None:
        """``predict`` ended."""

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, trainer: Trainer, task: Task, checkpoint: dict[str, Any]) -> None:
        """A checkpoint is being written; ``checkpoint`` is the dict of extra (non-tensor-sharded)
        state saved beside the model — add to it to save more."""

    def on_load_checkpoint(self, trainer: Trainer, task: Task, checkpoint: dict[str, Any]) -> None:
        """A checkpoint was loaded on resume; ``checkpoint`` is that same dict of extra state."""
