"""The ``Trainer``: runs a :class:`~maru.train.task.Task` on one process or many and gets out of
the way.

Settings are one frozen :class:`~maru.train.config.TrainerConfig`, checked when the Trainer is
built; ``callbacks`` (:class:`~maru.train.callback.Callback`) watch and steer a run under
Lightning's hook names. The step loop is what one would write by hand — forward under the
precision's context, backward, optimizer and scheduler step — plus integer compares for logging,
validation and checkpoint boundaries, written as a ladder of named steps (see ``_Run``). Nothing
reads a value off the device between logging steps; the loss of a logging step, reduced over
ranks, is the only sync. A hook nobody overrides costs nothing.

Resume is automatic: when ``checkpoint_dir`` holds a valid checkpoint, ``fit`` loads the model,
optimizers, schedulers, step, data position, callbacks' state and RNG state and continues, so a
restarted ``torchrun`` command carries on as if nothing happened. With data that keeps its place
(a :class:`~maru.train.data.ShardedDataset`, a DataLoader) the resumed run is bit-identical to an
unbroken one. Initial weights do not depend on whether the task was built before or after the
trainer (see :mod:`maru.train.seeding`).

``validate`` / ``test`` / ``predict`` run one pass of the task's ``validation_step`` /
``test_step`` / ``predict_step`` (see :mod:`maru.train.evaluation`); each stage also takes a
:class:`~maru.train.datamodule.DataModule`.

SIGTERM: see :mod:`maru.train.dist` — checkpoint, tear down, :class:`~maru.train.dist.Preempted`
(exit code 143).
"""

from __future__ import annotations

import gc
import os
import shutil
import time
import warnings
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from ..errors import TrainError
from .batch import batch_size_of, move_to_device
from .callback import Callback
from .config import TrainerConfig, TrainerSettings, max_time_seconds
from .datamodule import STAGE_LOADERS, is_data_module, overrides
from .dist import DistEnv, Preempted, SigtermFlag, destroy_process_group, init_process_group
from .evaluation import STAGES, Placement, Stage, require_step, run_pass
from .hooks import Hooks
from .logged import StageLog, to_float
from .optim import Optimization, SchedulerConfig, read_optimization, step_schedulers
from .precision import Precision
from .scale import prepare_task
from .seeding import seed_everything, settle_initial_weights
from .strategies import Strategy, resolve_strategy
from .task import Task, takes_batch_idx
from .watchdog import Heartbeat, Watchdog, timeout_from_env

if TYPE_CHECKING:
    import torch

__all__ = ["FitResult", "Trainer", "move_to_device", "seed_everything"]


@dataclass
class FitResult:
    """What ``fit`` ends with. ``metrics`` are the last logged training metrics (loss reduced over
    ranks), ``val_metrics`` the last validation's."""

    step: int
    epoch: int
    loss: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    resumed_from: str | None = None
    run_dir: str | None = None


def _resumable(data: Any) -> bool:
    return all(
        hasattr(data, name) for name in ("shard", "set_epoch", "state_dict", "load_state_dict")
    )


class Trainer:
    """Train a task: ``Trainer(max_steps=1000).fit(task, data)``.

    The keyword arguments are the fields of :class:`~maru.train.config.TrainerConfig` (see it for
    each), checked when the trainer is built; ``Trainer(config=TrainerConfig(...))`` is the same,
    and keywords given beside a ``config`` replace its values. Give ``max_steps`` or
    ``max_epochs`` (or both: whichever ends first). ``strategy`` is ``"auto"`` (one process:
    plain; several: DDP), ``"ddp"``, ``"fsdp"``, ``"tp"``, ``"dp_tp"`` (with ``tp_size``) or a
    :class:`~maru.train.strategies.Strategy`. ``callbacks`` are
    :class:`~maru.train.callback.Callback` instances.

    Seeding: the trainer seeds every generator with ``seed`` when constructed, and ``fit`` gives
    the task the weights it gets when built right after that seeding, whenever it was built (see
    :mod:`maru.train.seeding`), then reseeds with ``seed + data-parallel rank`` for per-rank
    randomness.

    What callbacks read and set, under Lightning's names: ``global_step``, ``current_epoch``,
    ``callback_metrics`` (the latest training, epoch and validation metrics as floats),
    ``logged_metrics`` (what went to the loggers), ``should_stop`` (set it on every rank — as a
    callback acting on reduced metrics does — and ``fit`` ends cleanly after the current step),
    ``optimizers``, ``lr_schedulers``, ``run_dir``, ``save_checkpoint(path)``,
    ``is_global_zero``, ``world_size``.
    """

    def __init__(
        self,
        *,
        config: TrainerConfig | None = None,
        callbacks: Sequence[Callback] | None = None,
        **settings: Unpack[TrainerSettings],
    ) -> None:
        if config is None:
            config = TrainerConfig(**settings)
        elif not isinstance(config, TrainerConfig):
            raise TrainError(
                f"config must be a maru.train.TrainerConfig, not {type(config).__name__}; build one "
                "with TrainerConfig(...) or pass the settings as keywords"
            )
        elif settings:
            config = replace(config, **settings)
        self.config = config
        self.callbacks: list[Callback] = list(callbacks or [])
        self.env = DistEnv.from_environ()
        self.heartbeat = Heartbeat()
        self.should_stop = False
        self.callback_metrics: dict[str, float] = {}
        self.logged_metrics: dict[str, float] = {}
        self._run: _Run | None = None
        self._optimization = Optimization([])
        self._placed: _Placed | None = None
        self._ended_at = (0, 0)  # (step, epoch) of the last fit, once its run is gone
        seed_everything(config.seed)

    # ------------------------------------------------------------------------- position
    @property
    def step(self) -> int:
        """Optimizer steps taken: live while ``fit`` runs (its run owns the count), the last
        run's count after it."""
        run = self._run
        return run.step if run is not None else self._ended_at[0]

    @property
    def epoch(self) -> int:
        """The epoch ``fit`` is in (live), or the one the last run ended in."""
        run = self._run
        return run.epoch if run is not None else self._ended_at[1]

    global_step = step
    current_epoch = epoch

    # ------------------------------------------------------------ what callbacks read
    @property
    def optimizers(self) -> list[Any]:
        """The optimizers of the running (or last) ``fit``."""
        return self._optimization.optimizers

    @property
    def lr_schedulers(self) -> list[Any]:
        """The schedulers of the running (or last) ``fit``."""
        return self._optimization.schedulers

    @property
    def lr_scheduler_configs(self) -> list[SchedulerConfig]:
        """Each scheduler with its interval, frequency and monitor."""
        return self._optimization.configs

    @property
    def run_dir(self) -> Path | None:
        """Where loggers write (``run_dir``); Lightning calls it ``log_dir``."""
        return self.config.run_dir  # type: ignore[return-value]

    log_dir = run_dir

    @property
    def max_steps(self) -> int | None:
        return self.config.max_steps

    @property
    def max_epochs(self) -> int | None:
        return self.config.max_epochs

    @property
    def world_size(self) -> int:
        return self.env.world_size

    @property
    def global_rank(self) -> int:
        return self.env.rank

    @property
    def local_rank(self) -> int:
        return self.env.local_rank

    @property
    def is_global_zero(self) -> bool:
        return self.env.rank == 0

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Save the running ``fit``'s full state (model, optimizers, schedulers, position, RNG,
        callbacks) as a checkpoint folder at ``path`` — the format ``checkpoint_dir`` holds, which
        ``CheckpointManager.load`` reads. Collective: every rank calls it (from a hook)."""
        run = self._run
        if run is None:
            raise TrainError(
                "save_checkpoint() saves a running fit: call it from a callback or task hook "
                "while fit runs (after fit, the task's own state_dict() is the model)"
            )
        return run.save_to(Path(path))

    # ----------------------------------------------------------------------------------- set-up
    def _pick_device(self) -> torch.device:
        import torch

        if self.config.device is not None:
            return torch.device(self.config.device)
        if torch.cuda.is_available():
            return torch.device("cuda", self.env.local_rank)
        return torch.device("cpu")

    def _set_deterministic(self) -> None:
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False

    def fit(
        self,
        task: Task,
        train_data: Iterable[Any] | None = None,
        val_data: Iterable[Any] | None = None,
        *,
        datamodule: Any = None,
    ) -> FitResult:
        """Train ``task`` on ``train_data`` (validating on ``val_data``) — or on a
        :class:`~maru.train.datamodule.DataModule`'s loaders, or the task's own
        ``train_dataloader()`` / ``val_dataloader()``; resumes from the newest checkpoint in
        ``checkpoint_dir`` when there is one. Owns the process group it starts and destroys it at
        the end, on error (without a barrier) and on preemption."""
        _check_task(task)
        if is_data_module(train_data):
            datamodule, train_data = train_data, None
        if val_data is not None and type(task).validation_step is Task.validation_step:
            raise TrainError(
                f"val_data was given but {type(task).__name__} has no validation_step(batch)"
            )
        self.env = DistEnv.from_environ()
        self.should_stop = False
        hooks = Hooks(self, task, self.callbacks)
        sources = _Sources(self.env, task, datamodule)
        owns_group = init_process_group(self.env)
        sigterm = SigtermFlag().install()
        watchdog = _start_watchdog(self.config.hang_timeout_s, self.heartbeat)
        try:
            sources.prepare("fit")
            hooks.call("setup", "fit")
            train, val = sources.fit_data(train_data, val_data)
            return self._fit(task, train, val, sigterm, hooks, datamodule)
        except BaseException as exc:
            hooks.call("on_exception", exc)
            raise
        finally:
            self._release_run()
            hooks.call("teardown", "fit")
            sources.teardown("fit")
            if watchdog is not None:
                watchdog.stop()
            sigterm.restore()
            if owns_group:
                destroy_process_group()
            if self.env.distributed:
                # The run's wrappers (DDP reducer, DCP planners) sit in reference cycles that hold
                # gloo work objects; left to interpreter teardown they abort the process
                # ("terminate called without an active exception"). Free them while Python is alive.
                gc.collect()

    def _fit(
        self,
        task: Task,
        train_data: Iterable[Any],
        val_data: Iterable[Any] | None,
        sigterm: SigtermFlag,
        hooks: Hooks,
        datamodule: Any,
    ) -> FitResult:
        import torch

        config = self.config
        if config.deterministic:
            self._set_deterministic()
        device = self._pick_device()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        strategy = resolve_strategy(config.strategy, self.env, tp_size=config.tp_size)
        precision = Precision(config.precision, device, fsdp=strategy.uses_fsdp)
        settle_initial_weights(task, config.seed)
        prepare_task(task, precision, config)
        strategy.setup(task, self.env, device, precision)
        place = Placement(task, strategy, precision, device, self.env)
        self._placed = _Placed.of(place)
        seed_everything(config.seed + strategy.dp_rank)
        optimization = read_optimization(task.configure_optimizers())
        _check_manual(task, config, precision, strategy)
        self._optimization = task._optimization = optimization
        task._trainer = self
        from .data.resume import resumable as _keeping_place

        train_data = _keeping_place(train_data, seed=config.seed, world_size=strategy.dp_size)
        resumable = _resumable(train_data)
        if resumable:
            train_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        if val_data is not None and _resumable(val_data):
            val_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        run = self._run = _Run(
            self, place, optimization, _Data(train_data, val_data, resumable, datamodule), sigterm, hooks
        )
        task._follow_position(_live_position(run))
        run.resume()
        hooks.call("on_fit_start")
        return run.loop()

    def _release_run(self) -> None:
        """Keep the run's position and drop the run itself: its wrappers must not outlive ``fit``
        (see the ``gc.collect`` there)."""
        run, self._run = self._run, None
        if run is not None:
            self._ended_at = (run.step, run.epoch)
            run.task._follow_position(self._ended_at)
            run.task._log_sink = StageLog("train", on_step=True, on_epoch=False)

    # ------------------------------------------------------------------------- evaluation
    def validate(self, task: Task, data: Iterable[Any] | None = None, *, datamodule: Any = None) -> list[dict[str, float]]:
        """One pass of ``validation_step`` over ``data``; returns ``[metrics]`` (Lightning's
        shape), also in ``callback_metrics``."""
        return [self._evaluate(STAGES["validate"], task, data, datamodule)]  # type: ignore[list-item]

    def test(self, task: Task, data: Iterable[Any] | None = None, *, datamodule: Any = None) -> list[dict[str, float]]:
        """One pass of ``test_step`` over ``data``; returns ``[metrics]``."""
        return [self._evaluate(STAGES["test"], task, data, datamodule)]  # type: ignore[list-item]

    def predict(self, task: Task, data: Iterable[Any] | None = None, *, datamodule: Any = None) -> list[Any]:
        """``predict_step`` on every batch of ``data``; returns what it returned, batch by batch
        (this rank's batches, under several processes)."""
        return self._evaluate(STAGES["predict"], task, data, datamodule)  # type: ignore[return-value]

    def _evaluate(self, stage: Stage, task: Task, data: Any, datamodule: Any) -> dict[str, float] | list[Any]:
        _check_task(task, training=False)
        require_step(task, stage)
        if is_data_module(data):
            datamodule, data = data, None
        self.env = DistEnv.from_environ()
        hooks = Hooks(self, task, self.callbacks)
        sources = _Sources(self.env, task, datamodule)
        owns_group = init_process_group(self.env)
        try:
            sources.prepare(stage.name)
            hooks.call("setup", stage.name)
            data = sources.stage_data(stage.name, data)
            place = self._placement(task)
            if _resumable(data):
                data.shard(place.strategy.dp_rank, place.strategy.dp_size)
                data.set_epoch(0)
            limit = _limit(self._eval_limit(stage), data, "limit_val_batches")
            return run_pass(
                place,
                hooks,
                stage,
                data,
                call=_stage_call(place, stage),
                pass_batch_idx=takes_batch_idx(task, stage.step),
                limit=limit,
                publish=self._publish,
            )
        except BaseException as exc:
            hooks.call("on_exception", exc)
            raise
        finally:
            hooks.call("teardown", stage.name)
            sources.teardown(stage.name)
            if owns_group:
                destroy_process_group()
            if self.env.distributed:
                gc.collect()  # as after fit: wrappers made here hold gloo work objects

    def _eval_limit(self, stage: Stage) -> int | float | None:
        dev = _dev_batches(self.config)
        if dev is not None:
            return dev
        return self.config.limit_val_batches if stage.name == "validate" else None

    def _placement(self, task: Task) -> Placement:
        """Where ``task`` runs for an evaluation: as the last ``fit`` of this trainer placed it,
        or set up now by the configured strategy."""
        placed = self._placed
        if placed is not None and placed.task() is task:
            return placed.placement(task, self.env)
        device = self._pick_device()
        strategy = resolve_strategy(self.config.strategy, self.env, tp_size=self.config.tp_size)
        precision = Precision(self.config.precision, device, fsdp=strategy.uses_fsdp)
        prepare_task(task, precision, self.config)
        strategy.setup(task, self.env, device, precision)
        place = Placement(task, strategy, precision, device, self.env)
        self._placed = _Placed.of(place)
        return place

    def _publish(self, metrics: dict[str, float]) -> None:
        self.callback_metrics.update(metrics)
        self.logged_metrics.update(metrics)


def _check_task(task: Any, *, training: bool = True) -> None:
    if not isinstance(task, Task):
        raise TrainError(f"the Trainer needs a maru.train.Task, got {type(task).__name__}")
    if training and type(task).training_step is Task.training_step:
        raise TrainError(f"{type(task).__name__} must implement training_step(batch) -> loss")


def _check_manual(task: Task, config: TrainerConfig, precision: Precision, strategy: Strategy) -> None:
    """Manual optimization leaves backward and stepping to the task: settings that act on them
    would be silently ignored, so they are refused — and so are the data-parallel strategies,
    whose gradient sync is tied to the trainer's own backward (a backward inside DDP's forward
    would leave ranks with different weights)."""
    if task.automatic_optimization:
        return
    if strategy.dp_size > 1:
        raise TrainError(
            f"{type(task).__name__} uses manual optimization (automatic_optimization = False), "
            f"which runs in one process or with strategy='tp', not with {strategy.name!r} over "
            f"{strategy.dp_size} data-parallel ranks yet; use automatic optimization there"
        )
    refused = [
        name
        for name, given in (
            ("grad_accum", config.grad_accum != 1),
            ("clip_grad_norm", config.clip_grad_norm is not None),
            ("precision '16-mixed' (a loss scaler)", precision.scaler is not None),
        )
        if given
    ]
    if refused:
        raise TrainError(
            f"{type(task).__name__} uses manual optimization (automatic_optimization = False), "
            f"which steps its own optimizers: {', '.join(refused)} cannot apply — accumulate, clip "
            "or scale in training_step yourself, or drop the setting"
        )


def _stage_call(place: Placement, stage: Stage) -> Any:
    """The task's step method for ``stage``, made FSDP-aware when the task is sharded."""
    task = place.task
    if place.strategy.uses_fsdp and stage.step != "validation_step":
        from torch.distributed.fsdp import register_fsdp_forward_method

        register_fsdp_forward_method(task, stage.step)
    if stage.step == "validation_step" and place.strategy.val_call is not None:
        return place.strategy.val_call
    return getattr(task, stage.step)


class _Sources:
    """Where a stage's data comes from: what was passed, else the data module's loader, else the
    task's own (``train_dataloader()`` …); the data module is prepared and set up first."""

    def __init__(self, env: DistEnv, task: Task, datamodule: Any) -> None:
        self.env, self.task, self.datamodule = env, task, datamodule
        self.prepared = False

    def fit_data(self, train: Any, val: Any) -> tuple[Any, Any]:
        if train is None:
            train = self._loader("fit")
        if val is None and type(self.task).validation_step is not Task.validation_step:
            val = self._loader("validate", required=False)
        return train, val

    def stage_data(self, stage: str, data: Any) -> Any:
        return data if data is not None else self._loader(stage)

    def _loader(self, stage: str, *, required: bool = True) -> Any:
        name = STAGE_LOADERS[stage]
        for source in (self.datamodule, self.task):
            if source is not None and overrides(source, name):
                return getattr(source, name)()
        if not required:
            return None
        raise TrainError(
            f"{stage}() got no data: pass it, pass datamodule= (a DataModule with {name}()), "
            f"or define {name}() on {type(self.task).__name__}"
        )

    def prepare(self, stage: str) -> None:
        """``prepare_data`` of the data module and the task once per machine (local rank 0),
        then the data module's ``setup(stage)`` everywhere — before the hooks' ``setup``."""
        dm, task = self.datamodule, self.task
        preparing = [s for s in (dm, task) if s is not None and callable(getattr(s, "prepare_data", None))]
        if preparing and self.env.local_rank == 0:
            for source in preparing:
                source.prepare_data()
        if preparing and self.env.distributed:
            import torch.distributed as dist

            dist.barrier()
        if dm is not None:
            dm.setup(stage)
            self.prepared = True

    def teardown(self, stage: str) -> None:
        if self.datamodule is not None and self.prepared:
            self.datamodule.teardown(stage)


@dataclass(frozen=True, slots=True)
class _Placed:
    """How the last ``fit`` placed its task — without the strategy's wrappers, which must not
    outlive ``fit`` — so that ``validate`` / ``test`` / ``predict`` reuse it."""

    task: weakref.ref[Task]
    precision: Precision
    device: Any
    dp_rank: int
    dp_size: int
    uses_fsdp: bool

    @classmethod
    def of(cls, place: Placement) -> _Placed:
        s = place.strategy
        return cls(weakref.ref(place.task), place.precision, place.device, s.dp_rank, s.dp_size, s.uses_fsdp)

    def placement(self, task: Task, env: DistEnv) -> Placement:
        from .strategies import DDP, FSDP

        reducer: Strategy = (FSDP() if self.uses_fsdp else DDP()) if env.distributed else Strategy()
        reducer.dp_rank, reducer.dp_size = self.dp_rank, self.dp_size
        reducer.val_call = task.validation_step
        return Placement(task, reducer, self.precision, self.device, env)


def _live_position(run: _Run) -> Any:
    """What ``task.global_step`` / ``current_epoch`` read while ``fit`` runs: the run's position,
    through a weak reference (the task must not keep the run and its wrappers alive)."""
    ref = weakref.ref(run)

    def position() -> tuple[int, int]:
        live = ref()
        return (live.step, live.epoch) if live is not None else (0, 0)

    return position


def _start_watchdog(timeout_s: float | None, heartbeat: Heartbeat) -> Watchdog | None:
    """The hang watchdog (see :mod:`maru.train.watchdog`) when a timeout is configured."""
    timeout = timeout_s if timeout_s is not None else timeout_from_env()
    return Watchdog(timeout, heartbeat).start() if timeout else None


def _dev_batches(config: TrainerConfig) -> int | None:
    """``fast_dev_run`` as a number of batches (``None`` when off)."""
    dev = config.fast_dev_run
    if dev is False or dev == 0:
        return None
    return 1 if dev is True else int(dev)


def _limit(value: int | float | None, data: Any, name: str) -> int | None:
    """A batch limit as a count: a fraction is of the data's length."""
    if value is None or value == 1.0 and isinstance(value, float):
        return None
    if isinstance(value, float):
        return int(_length(data, f"{name}={value}") * value)
    return int(value)


def _length(data: Any, setting: str) -> int:
    """The number of batches in ``data``, for a setting given as a fraction of it."""
    if not hasattr(data, "__len__"):
        raise TrainError(
            f"{setting} is a fraction of the data, but {type(data).__name__} has no length; "
            "give a number of batches instead"
        )
    return len(data)


@dataclass(frozen=True, slots=True)
class _Data:
    """A run's data; ``resumable`` when the training data keeps a position (a ShardedDataset)."""

    train: Any
    val: Any
    resumable: bool
    datamodule: Any = None


class _Run:
    """One ``fit`` call. It owns the position (``step``, ``epoch``; the trainer only reads them)
    and runs the loop as a ladder of small named steps, in the manner of torchtitan's ``train`` →
    ``train_step`` → ``forward_backward_step``:

    ``loop`` (epochs) → ``run_epoch`` (batches) → ``micro_step`` (forward and backward of one
    micro-batch) and, once ``grad_accum`` of them are in, ``train_step`` → ``optimizer_step``
    (unscale, clip, step, zero_grad, scaler, per-step schedulers) → ``log_step`` →
    ``maybe_validate`` → ``maybe_checkpoint`` → ``check_preempted`` → ``check_time``; then
    ``end_epoch`` (validation, epoch metrics, per-epoch schedulers).

    The hot path's settings are read off the config once, here, so a step costs what the
    hand-written loop costs plus a few method calls; a hook nobody overrides is not called.
    """

    def __init__(
        self,
        trainer: Trainer,
        place: Placement,
        optimization: Optimization,
        data: _Data,
        sigterm: SigtermFlag,
        hooks: Hooks,
    ) -> None:
        config = trainer.config
        self.trainer, self.config, self.env, self.heartbeat = trainer, config, place.env, trainer.heartbeat
        self.place, self.hooks = place, hooks
        self.task, self.strategy, self.precision = place.task, place.strategy, place.precision
        self.device = place.device
        self.optimizers, self.schedulers = optimization.optimizers, optimization.schedulers
        self.data = data
        self.sigterm = sigterm
        self.step = 0
        self.epoch = 0
        self.is_main = place.env.rank == 0
        self.manager: Any = None
        self.data_resumed = False
        self.resumed_from: str | None = None
        self.saved_step: int | None = None
        self.last_checkpoint: str | None = None
        self.metrics: dict[str, float] = {}
        self.val_metrics: dict[str, float] = {}
        dev = _dev_batches(config)
        if config.checkpoint_dir is not None and dev is None:
            from .checkpoint import CheckpointManager

            self.manager = CheckpointManager(
                config.checkpoint_dir, keep_last=config.keep_last, async_save=config.async_checkpoint
            )
        # the hot path, read once
        train_call = self.strategy.train_call
        assert train_call is not None
        self.train_call = train_call
        self.manual = not self.task.automatic_optimization
        # Lightning's (batch, batch_idx) signatures, read once
        self.pass_batch_idx = takes_batch_idx(self.task, "training_step")
        self.val_pass_batch_idx = data.val is not None and takes_batch_idx(self.task, "validation_step")
        self.batch_idx = 0
        self.forward_context = self.precision.forward_context
        self.scaler = self.precision.scaler
        self.move = self.device.type != "cpu"
        self.accum = config.grad_accum
        self.log_every = config.log_every
        self.max_steps: float = config.max_steps if config.max_steps is not None else float("inf")
        self.max_epochs: float = config.max_epochs if config.max_epochs is not None else float("inf")
        if dev is not None:
            self.max_steps = min(self.max_steps, dev)
        self._read_schedule(config, optimization, dev)
        self.train_log = StageLog("train", on_step=True, on_epoch=False)
        self.task._log_sink = self.train_log
        self.watch_batch_start = hooks.has("on_train_batch_start")
        self.watch_batch_end = hooks.has("on_train_batch_end")
        self.watch_before_step = hooks.has("on_before_optimizer_step")
        self.params: list[Any] = []
        # what the steps hand on: the current micro-batch count, the summed loss of a logging
        # step, and the last micro-batch's output, loss (divided by grad_accum) and batch
        self.micro = 0
        self.loss_sum: torch.Tensor | None = None
        self.out: Any = None
        self.loss: Any = None
        self.batch: Any = None
        self.grad_norm: Any = None
        self.time_up = False
        if self.manual:
            self.micro_step = self.manual_micro_step  # type: ignore[method-assign]

    def _read_schedule(self, config: TrainerConfig, optimization: Optimization, dev: int | None) -> None:
        """Validation boundaries, batch limits, schedulers by interval and the time limit, read
        once from the config."""
        self.train_limit = _limit(dev if dev is not None else config.limit_train_batches, self.data.train, "limit_train_batches")
        has_val = self.data.val is not None
        self.val_limit = _limit(dev if dev is not None else config.limit_val_batches, self.data.val, "limit_val_batches") if has_val else None
        interval = config.val_check_interval
        self.val_every = config.val_every if config.val_every is not None else (interval if isinstance(interval, int) else None)
        self.val_in_epoch: int | None = None
        if isinstance(interval, float) and has_val and interval < 1.0:
            batches = self.train_limit
            if batches is None:
                batches = _length(self.data.train, f"val_check_interval={interval}")
            self.val_in_epoch = max(1, int(batches * interval) // self.accum)
        steps_given = self.val_every is not None or self.val_in_epoch is not None
        self.val_epochs = config.check_val_every_n_epoch or (None if steps_given else 1)
        if not has_val:
            self.val_every = self.val_in_epoch = self.val_epochs = None
        self.validated_at = -1
        self.epoch_start_step = 0
        # manual optimization steps its own schedulers (as in Lightning)
        per_step = optimization.per_step() if not self.manual else []
        self.plain_schedulers = [c.scheduler for c in per_step if c.frequency == 1 and c.monitor is None]
        self.counted_schedulers = [c for c in per_step if c.frequency != 1 or c.monitor is not None]
        self.epoch_schedulers = optimization.per_epoch() if not self.manual else []
        seconds = max_time_seconds(config.max_time)
        self.deadline = time.monotonic() + seconds if seconds is not None else None

    # ------------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Load the newest checkpoint, if any: model, optimizers, schedulers, position, scaler,
        data position, callbacks' state and RNG."""
        if self.manager is None:
            return
        loaded = self.manager.load_latest(
            model=self.task, optimizers=self.optimizers, schedulers=self.schedulers
        )
        if loaded is None:
            return
        path, extra = loaded
        state = extra.get("trainer", {})
        self.step, self.epoch = int(state.get("step", 0)), int(state.get("epoch", 0))
        self.saved_step = self.step
        if self.precision.scaler is not None and "scaler" in extra:
            self.precision.scaler.load_state_dict(extra["scaler"])
        if self.data.resumable and "data" in extra:
            self.data.train.load_state_dict(extra["data"])
            self.data_resumed = True
        elif not self.data.resumable:
            warnings.warn(
                f"resumed at step {self.step} from {path}, but the training data keeps no place "
                "(a DataLoader, a ShardedDataset or an iterable with state_dict/load_state_dict "
                "does): the epoch restarts from its first batch (no mid-epoch resume)",
                stacklevel=4,
            )
        if "rng" in extra:
            from .checkpoint import restore_rng

            restore_rng(extra["rng"])
        self.hooks.load_state(extra.get("callbacks", {}))
        if self.data.datamodule is not None and "datamodule" in extra:
            self.data.datamodule.load_state_dict(extra["datamodule"])
        self.hooks.call("on_load_checkpoint", extra)
        self.resumed_from = str(path)

    def checkpoint_extra(self) -> dict[str, Any]:
        """Everything but the model and optimizers a checkpoint holds; hooks may add to it."""
        from .checkpoint import capture_rng

        extra: dict[str, Any] = {
            "trainer": {"step": self.step, "epoch": self.epoch},
            "rng": capture_rng(),
        }
        if self.data.resumable:
            extra["data"] = self.data.train.state_dict()
        if self.precision.scaler is not None:
            extra["scaler"] = self.precision.scaler.state_dict()
        callbacks = self.hooks.state()
        if callbacks:
            extra["callbacks"] = callbacks
        if self.data.datamodule is not None and hasattr(self.data.datamodule, "state_dict"):
            state = self.data.datamodule.state_dict()
            if state:
                extra["datamodule"] = state
        self.hooks.call("on_save_checkpoint", extra)
        return extra

    def save(self) -> None:
        path = self.manager.save(
            self.step,
            model=self.task,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            extra=self.checkpoint_extra(),
        )
        self.saved_step = self.step
        self.last_checkpoint = str(path)

    def save_to(self, path: Path) -> Path:
        """A complete checkpoint at ``path``, written beside it and moved into place."""
        from .checkpoint import CheckpointManager

        staging = path.parent / f".{path.name}.saving"
        manager = CheckpointManager(staging, keep_last=1)
        written = manager.save(
            self.step,
            model=self.task,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            extra=self.checkpoint_extra(),
        )
        manager.wait()
        if self.is_main:
            if path.exists():
                shutil.rmtree(path)
            os.replace(written, path)
            shutil.rmtree(staging, ignore_errors=True)
        if self.env.distributed:
            import torch.distributed as dist

            dist.barrier()
        return path

    # ------------------------------------------------------------------------------- loop
    def loop(self) -> FitResult:
        """Epochs until ``max_steps``, ``max_epochs``, ``max_time`` or ``should_stop``, then the
        final validation and save."""
        self.params = [p for p in self.task.parameters() if p.requires_grad]
        self._start_logging()
        self.task.train()
        self._window_step = self.step
        keep_position = self.data_resumed  # a resumed ShardedDataset continues mid-epoch once
        self.hooks.call("on_train_start")
        while not self._done():
            self.begin_epoch(keep_position)
            resumed_epoch, keep_position = keep_position, False  # resumed at its end: may be empty
            completed = self.run_epoch()
            self.end_epoch(completed)
            if not completed:
                break
            if self.batch is None and not resumed_epoch and not self._done():
                raise TrainError("the training data yielded no batch: nothing to train on")
        return self._finish()

    def _done(self) -> bool:
        return self.step >= self.max_steps or self.epoch >= self.max_epochs or self.trainer.should_stop

    def begin_epoch(self, keep_position: bool) -> None:
        """Tell the data which epoch starts, so it shuffles by epoch (a ShardedDataset, or a
        DataLoader's sampler); count batches from 0, or from where a resumed epoch left off."""
        self.batch_idx = 0
        if self.data.resumable:
            if keep_position:
                self.batch_idx = int(self.data.train.state_dict().get("offset", 0))
            else:
                self.data.train.set_epoch(self.epoch)
        else:
            sampler = getattr(self.data.train, "sampler", None)
            if sampler is not None and hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
        self.epoch_start_step = self.step - self.batch_idx // self.accum
        self.hooks.call("on_train_epoch_start")

    def run_epoch(self) -> bool:
        """One pass over the training data (up to ``limit_train_batches``); False when
        ``max_steps`` or a stop ended it early."""
        data = self.data.train
        if self.train_limit is not None:
            data = islice(data, max(self.train_limit - self.batch_idx, 0))
        trainer = self.trainer
        for batch in data:
            if self.micro_step(batch):
                self.train_step()
                if self.step >= self.max_steps or trainer.should_stop:
                    return False
            elif self.watch_batch_end:
                self.hooks.call("on_train_batch_end", self.out, self.batch, self.batch_idx - 1)
        return True

    def micro_step(self, batch: Any) -> bool:
        """Forward and backward of one micro-batch, the gradient sync held back until the last of
        a step's ``grad_accum``; True when that step's gradients are all in."""
        if self.move:
            batch = move_to_device(batch, self.device)
        self.batch = self.train_log.batch = batch
        if self.watch_batch_start:
            self.hooks.call("on_train_batch_start", batch, self.batch_idx)
        self.micro += 1
        accum = self.accum
        sync = self.micro == accum
        with self.strategy.no_sync(sync) if accum > 1 else _NULL, self.forward_context():
            out = self.train_call(batch, self.batch_idx) if self.pass_batch_idx else self.train_call(batch)
        self.batch_idx += 1
        loss = out["loss"] if isinstance(out, dict) else out
        if accum > 1:
            loss = loss / accum
        if (self.step + 1) % self.log_every == 0:  # the step this micro-batch belongs to logs
            detached = loss.detach().float()
            self.loss_sum = detached if self.loss_sum is None else self.loss_sum + detached
        self.out, self.loss = out, loss
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if sync:
            self.micro = 0
        return sync

    def manual_micro_step(self, batch: Any) -> bool:
        """Manual optimization: ``training_step`` does its own backward and optimizer steps; each
        batch is one step. What it returns (a loss, a dict with one, or nothing) is logged."""
        if self.move:
            batch = move_to_device(batch, self.device)
        self.batch = self.train_log.batch = batch
        if self.watch_batch_start:
            self.hooks.call("on_train_batch_start", batch, self.batch_idx)
        with self.forward_context():
            out = self.train_call(batch, self.batch_idx) if self.pass_batch_idx else self.train_call(batch)
        self.batch_idx += 1
        loss = out.get("loss") if isinstance(out, dict) else out
        if loss is not None and (self.step + 1) % self.log_every == 0:
            self.loss_sum = loss.detach().float()
        self.out, self.loss = out, loss
        return True

    def train_step(self) -> None:
        """What follows a step's backward passes: the optimizer step, the count, the batch-end
        hooks, the logging, validation and checkpoint boundaries and the stop checks."""
        if not self.manual:
            self.optimizer_step()
        self.step += 1
        self.heartbeat.step = self.step
        if self.watch_batch_end:
            self.hooks.call("on_train_batch_end", self.out, self.batch, self.batch_idx - 1)
        stop = self.log_step()
        self.maybe_validate()
        self.maybe_checkpoint()
        self.check_preempted(stop)
        if self.deadline is not None:
            self.check_time()

    def optimizer_step(self) -> None:
        """Unscale and clip (when clipping), step and zero every optimizer, then update the loss
        scaler and step the per-step schedulers."""
        scaler, optimizers = self.scaler, self.optimizers
        clip = self.config.clip_grad_norm
        if scaler is not None and (clip is not None or self.watch_before_step):
            for opt in optimizers:
                scaler.unscale_(opt)
        if self.watch_before_step:
            for opt in optimizers:
                self.hooks.call("on_before_optimizer_step", opt)
        if clip is not None:
            self.grad_norm = self.strategy.clip_grad_norm(self.params, clip)
        for opt in optimizers:
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.update()
        for sched in self.plain_schedulers:
            sched.step()
        if self.counted_schedulers:
            step_schedulers(self.counted_schedulers, self.step + 1, self._scheduler_metrics)

    def _scheduler_metrics(self) -> dict[str, float]:
        return self.trainer.callback_metrics

    def log_step(self) -> bool:
        """At a logging boundary, log (see :meth:`_log`); returns whether any rank was asked to
        stop (SIGTERM), which that same reduction tells every rank."""
        if self.step % self.log_every != 0:
            return False
        stop = self._log()
        self.loss_sum = None
        return stop

    def maybe_validate(self) -> None:
        """Validate at a step boundary: every ``val_every`` steps, or every ``val_in_epoch`` steps
        of an epoch (a fractional ``val_check_interval``)."""
        every, in_epoch = self.val_every, self.val_in_epoch
        by_run = every is not None and self.step % every == 0
        by_epoch = in_epoch is not None and (self.step - self.epoch_start_step) % in_epoch == 0
        if by_run or by_epoch:
            self.validate()

    def maybe_checkpoint(self) -> None:
        every = self.config.checkpoint_every
        if every is not None and self.manager is not None and self.step % every == 0:
            self.save()

    def check_preempted(self, stop: bool) -> None:
        """Preempt when a logging step said so or when the ranks agree that SIGTERM arrived
        (:meth:`SigtermFlag.agreed`: at once in one process, the next step in a group)."""
        if stop or self.sigterm.agreed():
            self._preempt()

    def check_time(self) -> None:
        """Past ``max_time``: stop after this step (several processes agree at the next logging
        step, through the same reduction as SIGTERM)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if self.env.distributed:
                self.time_up = True
            else:
                self.trainer.should_stop = True

    def _preempt(self) -> None:
        if self.manager is not None and self.saved_step != self.step:
            self.save()
        if self.manager is not None:
            self.manager.wait()
        self._close_logging()
        destroy_process_group()
        raise Preempted(self.step, self.last_checkpoint)

    def end_epoch(self, completed: bool) -> None:
        """The end of an epoch (or of the part of one that ran): validation when due or when
        ``fit`` ends here, the task's ``on_train_epoch_end``, epoch metrics, the callbacks' hook;
        for a whole epoch, the per-epoch schedulers and the count."""
        ending = not completed or self.trainer.should_stop or self.step >= self.max_steps
        ending = ending or self.epoch + 1 >= self.max_epochs
        due = completed and self.val_epochs is not None and (self.epoch + 1) % self.val_epochs == 0
        if self.data.val is not None and self.validated_at != self.step and (due or ending):
            self.validate()
        log = self.train_log
        log.in_epoch_hook = True
        try:
            self.hooks.call_task("on_train_epoch_end")
        finally:
            log.in_epoch_hook = False
        values = log.epoch_values(self.place.reduce())
        if values:
            self._publish(values)
        self.hooks.call_callbacks("on_train_epoch_end")
        if completed:
            step_schedulers(self.epoch_schedulers, self.epoch + 1, self._scheduler_metrics)
            self.epoch += 1

    def _finish(self) -> FitResult:
        if self.data.val is not None and self.validated_at != self.step:
            self.validate()
        self.hooks.call("on_train_end")
        if self.manager is not None:
            if self.saved_step != self.step:
                self.save()
            self.manager.wait()
        self._close_logging()
        self.hooks.call("on_fit_end")
        loss = self.loss
        last = float(loss.detach().float().item()) * self.accum if loss is not None else None
        run_dir = self.config.run_dir
        return FitResult(
            step=self.step,
            epoch=self.epoch,
            loss=last,
            metrics=dict(self.metrics),
            val_metrics=dict(self.val_metrics),
            checkpoint=self.last_checkpoint,
            resumed_from=self.resumed_from,
            run_dir=str(run_dir) if run_dir is not None else None,
        )

    # ---------------------------------------------------------------------------- logging
    def _start_logging(self) -> None:
        from .loggers import make_loggers
        from .metrics import ThroughputMeter
        from .progress import ProgressBar

        config = self.config
        quiet = _dev_batches(config) is not None
        self.loggers = make_loggers(config.loggers, config.run_dir) if self.is_main and not quiet else []
        total: int | None = config.max_steps
        if total is None and config.max_epochs is not None and hasattr(self.data.train, "__len__"):
            total = config.max_epochs * len(self.data.train) // config.grad_accum
        self.progress = ProgressBar(total, enabled=config.progress and self.is_main)
        self.meter = ThroughputMeter(device=self.device, dtype=self.precision.name)
        self.meter.start_step(sync=True)
        for logger in self.loggers:
            logger.log_hparams(self._hparams())

    def _hparams(self) -> dict[str, Any]:
        config = self.config
        return {
            "max_steps": config.max_steps,
            "max_epochs": config.max_epochs,
            "strategy": self.strategy.name,
            "precision": self.precision.name,
            "grad_accum": config.grad_accum,
            "clip_grad_norm": config.clip_grad_norm,
            "seed": config.seed,
            "world_size": self.env.world_size,
            "task": type(self.task).__name__,
        }

    def _publish(self, metrics: dict[str, float]) -> None:
        """Metrics that are not a logging step's (epoch and validation values): to the trainer's
        ``callback_metrics`` / ``logged_metrics`` and the loggers."""
        self.trainer.callback_metrics.update(metrics)
        self.trainer.logged_metrics.update(metrics)
        for logger in self.loggers:
            logger.log_metrics(metrics, self.step)

    def _log(self) -> bool:
        """One logging step: reduce the loss, the SIGTERM flag and the time-limit flag over ranks
        in one all-reduce, read task metrics, write loggers and the progress bar. Returns whether
        to stop (SIGTERM); a rank past ``max_time`` makes every rank stop cleanly."""
        import torch

        loss_sum = self.loss_sum
        had_loss = loss_sum is not None
        if loss_sum is None:  # manual optimization whose training_step returned nothing
            loss_sum = torch.zeros((), device=self.device)
        flags = [float(self.sigterm.set), float(self.time_up)]
        packed = torch.cat([loss_sum.reshape(1), torch.tensor(flags, device=loss_sum.device)])
        world = self.env.world_size
        if world > 1:
            self.strategy.all_reduce_sum(packed)
        values = packed.tolist()
        metrics: dict[str, float] = {"loss": values[0] / world} if had_loss else {}
        metrics["epoch"] = float(self.epoch)
        metrics["lr"] = float(self.optimizers[0].param_groups[0]["lr"])
        grad_norm = self.grad_norm
        if grad_norm is not None:
            metrics["grad_norm"] = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if isinstance(self.out, dict):
            for name, value in self.out.items():
                if name != "loss":
                    metrics[name] = to_float(value)
        metrics.update(self.train_log.step_values(self.place.reduce()))
        metrics.update(self._throughput())
        self.metrics = metrics
        trainer = self.trainer
        trainer.logged_metrics = dict(metrics)
        trainer.callback_metrics.update(metrics)
        if values[2] > 0:
            trainer.should_stop = True
        for logger in self.loggers:
            logger.log_metrics(metrics, self.step)
        self.progress.update(self.step, metrics)
        return values[1] > 0

    def _throughput(self) -> dict[str, float]:
        step, batch, accum = self.step, self.batch, self.accum
        steps = max(step - self._window_step, 1)
        self._window_step = step
        dp = self.strategy.dp_size
        samples = batch_size_of(batch) * accum * dp * steps
        tokens = self.task.tokens_in(batch)
        flops = self.task.flops_per_step(batch)
        figures = self.meter.end_step(
            samples,
            tokens * accum * dp * steps if tokens is not None else None,
            flops=flops * steps if flops is not None else None,
            sync=True,
        )
        figures["step_time_s"] /= steps
        self.meter.start_step()
        return figures

    def _close_logging(self) -> None:
        for logger in self.loggers:
            logger.finalize()
        self.loggers = []
        self.progress.close()

    # ------------------------------------------------------------------------- validation
    def validate(self) -> dict[str, float]:
        """One validation pass (see :mod:`maru.train.evaluation`), at most once per step."""
        self.validated_at = self.step
        val, call = self.data.val, self.strategy.val_call
        assert call is not None
        if _resumable(val):
            val.set_epoch(0)
        metrics = run_pass(
            self.place,
            self.hooks,
            STAGES["validate"],
            val,
            call=call,
            pass_batch_idx=self.val_pass_batch_idx,
            limit=self.val_limit,
            publish=self._publish_validation,
        )
        assert isinstance(metrics, dict)
        return metrics

    def _publish_validation(self, metrics: dict[str, float]) -> None:
        self.val_metrics = metrics
        self._publish(metrics)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()
