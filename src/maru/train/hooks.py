"""Calling hooks: each callback's and the task's overrides of a Lightning-named hook, found once.

A callback hook gets ``(trainer, task, *args)``; the task's hook of the same name gets ``*args``
(a LightningModule's ``on_train_epoch_end(self)``, ``on_train_batch_end(self, outputs, batch,
batch_idx)``, ``setup(self, stage)`` …). The task's hook runs first, so what it logs in an
``on_*_epoch_end`` hook is in the metrics the callbacks then see. Only overridden hooks are kept:
a run whose callbacks watch validation alone pays nothing per training batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import TrainError
from .callback import Callback

if TYPE_CHECKING:
    from .task import Task

HOOKS = tuple(
    name for name in vars(Callback) if name.startswith("on_") or name in ("setup", "teardown")
)


class Hooks:
    """The hook methods of one run's callbacks and task, by hook name."""

    def __init__(self, trainer: Any, task: Task, callbacks: Sequence[Callback]) -> None:
        from .task import Task

        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TrainError(
                    f"callbacks must be maru.train.Callback instances, not {type(callback).__name__}; "
                    "subclass Callback and override the hooks you need"
                )
        self.trainer, self.task = trainer, task
        self.callbacks = list(callbacks)
        self._callback_hooks: dict[str, tuple[Callable[..., Any], ...]] = {}
        self._task_hooks: dict[str, Callable[..., Any]] = {}
        for name in HOOKS:
            base = getattr(Callback, name)
            self._callback_hooks[name] = tuple(
                getattr(cb, name) for cb in callbacks if getattr(type(cb), name, base) is not base
            )
            own = getattr(type(task), name, None)
            if own is not None and own is not getattr(Task, name, None):
                self._task_hooks[name] = getattr(task, name)

    def has(self, name: str) -> bool:
        """Whether anything overrides hook ``name`` (the loop skips the call otherwise)."""
        return bool(self._callback_hooks[name]) or name in self._task_hooks

    def call(self, name: str, *args: Any) -> None:
        """The task's hook, then every callback's."""
        self.call_task(name, *args)
        self.call_callbacks(name, *args)

    def call_task(self, name: str, *args: Any) -> None:
        hook = self._task_hooks.get(name)
        if hook is not None:
            hook(*args)

    def call_callbacks(self, name: str, *args: Any) -> None:
        trainer, task = self.trainer, self.task
        for hook in self._callback_hooks[name]:
            hook(trainer, task, *args)

    # ------------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Each callback's ``state_dict``, by ``state_key`` (what a checkpoint saves)."""
        states = {}
        for callback in self.callbacks:
            state = callback.state_dict()
            if state:
                states[callback.state_key] = state
        return states

    def load_state(self, states: dict[str, Any]) -> None:
        """Hand each callback its saved state, if the checkpoint has one for its ``state_key``."""
        for callback in self.callbacks:
            if callback.state_key in states:
                callback.load_state_dict(states[callback.state_key])
