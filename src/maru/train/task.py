"""The ``Task``: a model together with how to train it — the one class a user writes.

A task is an ``nn.Module`` with ``training_step(batch) -> loss`` (or a LightningModule's
``training_step(batch, batch_idx)``), an optional ``validation_step`` and ``configure_optimizers()``; hooks tell the trainer how to parallelize it (``parallelize`` for
tensor parallel, ``fsdp_units`` for FSDP2) and how to count work (``flops_per_step``,
``tokens_in``) for throughput and MFU.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TrainError
from .logged import StageLog
from .optim import read_optimization
from .seeding import recording_construction

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
    ``configure_optimizers`` returns what a LightningModule's does (see :mod:`maru.train.optim`):
    an optimizer, ``(optimizer, scheduler)``, lists of them, or ``{"optimizer": ...,
    "lr_scheduler": scheduler or {"scheduler", "interval", "frequency", "monitor"}}`` (or a list of
    such dicts); a bare scheduler steps once per optimizer step.

    Optional, as in Lightning: ``validation_step``, ``test_step``, ``predict_step``; hooks named as
    a LightningModule's (``on_train_epoch_end(self)``, ``on_validation_epoch_end(self)``,
    ``setup(self, stage)`` …, see :mod:`maru.train.hooks`); ``automatic_optimization = False``
    with ``self.optimizers()``, ``self.lr_schedulers()`` and ``self.manual_backward(loss)``;
    ``self.log(name, value, on_step=, on_epoch=, prog_bar=, sync_dist=)`` (see
    :mod:`maru.train.logged`); ``self.trainer`` while a trainer runs it.

    As in Lightning, ``training_step`` / ``validation_step`` may take ``(batch, batch_idx)`` — the
    batch's index in its epoch (or validation pass); each micro-batch counts under ``grad_accum`` —
    and ``self.global_step`` (optimizer steps taken) and ``self.current_epoch`` say where ``fit`` is.
    """

    automatic_optimization: bool = True
    rebuild_on_fit: bool = True  # see maru.train.seeding: initial weights independent of order

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = recording_construction(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(self) -> None:
        super().__init__()
        self._log_sink = StageLog("train", on_step=True, on_epoch=False)
        self._fit_position: Callable[[], tuple[int, int]] | tuple[int, int] = (0, 0)
        self._trainer: Any = None
        self._optimization: Any = None

    @property
    def trainer(self) -> Any:
        """The :class:`~maru.train.Trainer` running this task (Lightning's ``self.trainer``)."""
        if self._trainer is None:
            raise TrainError(f"{type(self).__name__} is not attached to a Trainer (fit it first)")
        return self._trainer

    def optimizers(self) -> Any:
        """The optimizer(s) ``configure_optimizers`` gave, for manual optimization: one optimizer,
        or a list when there are several (as in Lightning)."""
        optimizers = self._configured().optimizers
        return optimizers[0] if len(optimizers) == 1 else list(optimizers)

    def lr_schedulers(self) -> Any:
        """The scheduler(s) ``configure_optimizers`` gave: ``None``, one, or a list."""
        schedulers = self._configured().schedulers
        if not schedulers:
            return None
        return schedulers[0] if len(schedulers) == 1 else list(schedulers)

    def manual_backward(self, loss: torch.Tensor) -> None:
        """Backward for manual optimization (``automatic_optimization = False``)."""
        loss.backward()

    @property
    def device(self) -> torch.device:
        """Where the task's parameters are (Lightning's ``self.device``; the CPU before any)."""
        override = self.__dict__.get("_device")
        if override is not None:
            return override  # type: ignore[no-any-return]
        for tensor in self.parameters():
            return tensor.device
        import torch

        return torch.device("cpu")

    @device.setter
    def device(self, value: Any) -> None:
        self.__dict__["_device"] = value

    def save_hyperparameters(self, *names: str, ignore: str | list[str] | None = None) -> None:
        """Keep the constructor's arguments in ``self.hparams`` (attribute access too), as a
        LightningModule's ``save_hyperparameters`` does; ``names`` picks some, ``ignore`` drops
        some. Loggers get them with the run's settings."""
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        values = dict(caller.f_locals) if caller is not None else {}
        code = caller.f_code if caller is not None else None
        params = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount] if code else ()
        dropped = {ignore} if isinstance(ignore, str) else set(ignore or ())
        chosen = names or tuple(p for p in params if p not in dropped)
        self.hparams.update({name: values[name] for name in chosen if name in values})

    @property
    def hparams(self) -> HParams:
        """What ``save_hyperparameters`` kept."""
        found = self.__dict__.get("_hparams")
        if found is None:
            found = self.__dict__["_hparams"] = HParams()
        return found  # type: ignore[no-any-return]

    def _configured(self) -> Any:
        if self._optimization is None:
            raise TrainError(
                f"{type(self).__name__}.optimizers() is available while a Trainer fits it"
            )
        return self._optimization

    @property
    def global_step(self) -> int:
        """Optimizer steps taken by the running ``fit`` (the last one's, after it); Lightning's name."""
        return self._position()[0]

    @property
    def current_epoch(self) -> int:
        """The epoch the running ``fit`` is in (the last one's, after it); Lightning's name."""
        return self._position()[1]

    def _position(self) -> tuple[int, int]:
        source = self._fit_position
        return source() if callable(source) else source

    def _follow_position(self, source: Callable[[], tuple[int, int]] | tuple[int, int]) -> None:
        """Where ``global_step`` / ``current_epoch`` are read: the trainer's live run while ``fit``
        runs, the final (step, epoch) after it."""
        self._fit_position = source

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

    def log(
        self,
        name: str,
        value: Any,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        prog_bar: bool = False,
        logger: bool = True,
        sync_dist: bool = False,
        batch_size: int | None = None,
        **_lightning_options: Any,
    ) -> None:
        """Report a metric (tensor or number), Lightning's way (see :mod:`maru.train.logged`): a
        step value in ``training_step`` (read only at logging steps, so a tensor costs no device
        sync on other steps), a batch-size-weighted mean over the pass in ``validation_step`` /
        ``test_step``; ``sync_dist`` also averages over ranks. Other Lightning options are
        accepted and ignored."""
        self._log_sink.log(
            name, value, on_step, on_epoch, prog_bar=prog_bar, sync_dist=sync_dist, batch_size=batch_size
        )

    def log_dict(self, metrics: dict[str, Any], **options: Any) -> None:
        """``log`` each of ``metrics`` with the same options."""
        for name, value in metrics.items():
            self.log(name, value, **options)


class HParams(dict[str, Any]):
    """A dict whose keys read as attributes too (``self.hparams.lr``), as Lightning's."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no hyperparameter {name!r}; saved: {sorted(self)}") from None


def takes_batch_idx(task: Task, step: str) -> bool:
    """Whether the task's ``step`` method (``"training_step"`` …) takes ``(batch, batch_idx)`` as a
    LightningModule's does, rather than ``(batch)``. Read off the class, once per fit: wrappers a
    strategy puts on the instance (FSDP's) take ``*args`` whatever the task wrote."""
    try:
        params = list(inspect.signature(getattr(type(task), step)).parameters.values())[1:]  # less self
    except (TypeError, ValueError):  # a builtin or C-implemented callable: call it with the batch
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in params
    )


def split_optimizers(configured: Any) -> tuple[list[Any], list[Any]]:
    """What ``configure_optimizers`` returned, as ``(optimizers, schedulers)`` (see
    :func:`maru.train.optim.read_optimization`, which also says when each scheduler steps)."""
    optimization = read_optimization(configured)
    return optimization.optimizers, optimization.schedulers
