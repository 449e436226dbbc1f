"""The ``Trainer``: runs a :class:`~maru.train.task.Task` on one process or many and gets out of
the way.

Settings are one frozen :class:`~maru.train.config.TrainerConfig`, checked when the Trainer is
built. The step loop is what one would write by hand — forward under the precision's context,
backward, optimizer and scheduler step — plus integer compares for logging, validation and
checkpoint boundaries, written as a ladder of named steps (see ``_Run``). Nothing reads a value
off the device between logging steps; the loss of a logging step, reduced over ranks, is the only
sync.

Resume is automatic: when ``checkpoint_dir`` holds a valid checkpoint, ``fit`` loads the model,
optimizers, schedulers, step, data position and RNG state and continues, so a restarted
``torchrun`` command carries on as if nothing happened. With a
:class:`~maru.train.data.ShardedDataset` the resumed run is bit-identical to an unbroken one.

SIGTERM: see :mod:`maru.train.dist` — checkpoint, tear down, :class:`~maru.train.dist.Preempted`
(exit code 143).
"""

from __future__ import annotations

import gc
import os
import random
import warnings
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Unpack

from ..errors import TrainError
from .config import TrainerConfig, TrainerSettings
from .dist import DistEnv, Preempted, SigtermFlag, destroy_process_group, init_process_group
from .precision import Precision
from .strategies import Strategy, resolve_strategy
from .task import Task, split_optimizers, takes_batch_idx
from .watchdog import Heartbeat, Watchdog, timeout_from_env

if TYPE_CHECKING:
    import torch


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


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    import torch

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in ``batch`` (nested dicts, tuples, lists) moved to ``device`` without blocking."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: move_to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def _resumable(data: Any) -> bool:
    return all(
        hasattr(data, name) for name in ("shard", "set_epoch", "state_dict", "load_state_dict")
    )


def _batch_size(batch: Any) -> int:
    import torch

    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        for value in batch.values():
            return _batch_size(value)
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 1


class Trainer:
    """Train a task: ``Trainer(max_steps=1000).fit(task, data)``.

    The keyword arguments are the fields of :class:`~maru.train.config.TrainerConfig` (see it for
    each), checked when the trainer is built; ``Trainer(config=TrainerConfig(...))`` is the same,
    and keywords given beside a ``config`` replace its values. Give ``max_steps`` or
    ``max_epochs`` (or both: whichever ends first). ``strategy`` is ``"auto"`` (one process:
    plain; several: DDP), ``"ddp"``, ``"fsdp"``, ``"tp"``, ``"dp_tp"`` (with ``tp_size``) or a
    :class:`~maru.train.strategies.Strategy`. The trainer seeds every generator with ``seed`` when
    constructed, so a task built after the trainer starts identical on every rank; ``fit`` then
    reseeds with ``seed + data-parallel rank`` for per-rank randomness.
    """

    def __init__(
        self, *, config: TrainerConfig | None = None, **settings: Unpack[TrainerSettings]
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
        self.env = DistEnv.from_environ()
        self.heartbeat = Heartbeat()
        self._run: _Run | None = None
        self._ended_at = (0, 0)  # (step, epoch) of the last fit, once its run is gone
        seed_everything(config.seed)

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

    def fit(self, task: Task, train_data: Iterable[Any], val_data: Iterable[Any] | None = None) -> FitResult:
        """Train ``task`` on ``train_data`` (validating on ``val_data``); resumes from the newest
        checkpoint in ``checkpoint_dir`` when there is one. Owns the process group it starts and
        destroys it at the end, on error (without a barrier) and on preemption."""
        if not isinstance(task, Task):
            raise TrainError(f"fit() needs a maru.train.Task, got {type(task).__name__}")
        if type(task).training_step is Task.training_step:
            raise TrainError(f"{type(task).__name__} must implement training_step(batch) -> loss")
        if val_data is not None and type(task).validation_step is Task.validation_step:
            raise TrainError(
                f"val_data was given but {type(task).__name__} has no validation_step(batch)"
            )
        self.env = DistEnv.from_environ()
        owns_group = init_process_group(self.env)
        sigterm = SigtermFlag().install()
        watchdog = _start_watchdog(self.config.hang_timeout_s, self.heartbeat)
        try:
            return self._fit(task, train_data, val_data, sigterm)
        finally:
            self._release_run()
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
        self, task: Task, train_data: Iterable[Any], val_data: Iterable[Any] | None, sigterm: SigtermFlag
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
        strategy.setup(task, self.env, device, precision)
        seed_everything(config.seed + strategy.dp_rank)
        optimizers, schedulers = split_optimizers(task.configure_optimizers())
        resumable = _resumable(train_data)
        if resumable:
            train_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        if val_data is not None and _resumable(val_data):
            val_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        run = self._run = _Run(
            config,
            self.env,
            self.heartbeat,
            _Parts(task, strategy, precision, device, optimizers, schedulers),
            _Data(train_data, val_data, resumable),
            sigterm,
        )
        task._follow_position(_live_position(run))
        run.resume()
        return run.loop()

    def _release_run(self) -> None:
        """Keep the run's position and drop the run itself: its wrappers must not outlive ``fit``
        (see the ``gc.collect`` there)."""
        run, self._run = self._run, None
        if run is not None:
            self._ended_at = (run.step, run.epoch)
            run.task._follow_position(self._ended_at)


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


@dataclass(frozen=True, slots=True)
class _Parts:
    """What ``fit`` set up for one run: the task as the strategy prepared it, and its helpers."""

    task: Task
    strategy: Strategy
    precision: Precision
    device: torch.device
    optimizers: list[Any]
    schedulers: list[Any]


@dataclass(frozen=True, slots=True)
class _Data:
    """A run's data; ``resumable`` when the training data keeps a position (a ShardedDataset)."""

    train: Any
    val: Any
    resumable: bool


class _Run:
    """One ``fit`` call. It owns the position (``step``, ``epoch``; the trainer only reads them)
    and runs the loop as a ladder of small named steps, in the manner of torchtitan's ``train`` →
    ``train_step`` → ``forward_backward_step``:

    ``loop`` (epochs) → ``run_epoch`` (batches) → ``micro_step`` (forward and backward of one
    micro-batch) and, once ``grad_accum`` of them are in, ``train_step`` → ``optimizer_step``
    (unscale, clip, step, zero_grad, scaler, schedulers) → ``log_step`` → ``maybe_validate`` →
    ``maybe_checkpoint`` → ``check_preempted``.

    The hot path's settings are read off the config once, here, so a step costs what the
    hand-written loop costs plus a few method calls.
    """

    def __init__(
        self,
        config: TrainerConfig,
        env: DistEnv,
        heartbeat: Heartbeat,
        parts: _Parts,
        data: _Data,
        sigterm: SigtermFlag,
    ) -> None:
        self.config = config
        self.env = env
        self.heartbeat = heartbeat
        self.task, self.strategy, self.precision = parts.task, parts.strategy, parts.precision
        self.device, self.optimizers, self.schedulers = parts.device, parts.optimizers, parts.schedulers
        self.data = data
        self.sigterm = sigterm
        self.step = 0
        self.epoch = 0
        self.is_main = env.rank == 0
        self.manager: Any = None
        self.data_resumed = False
        self.resumed_from: str | None = None
        self.saved_step: int | None = None
        self.last_checkpoint: str | None = None
        self.metrics: dict[str, float] = {}
        self.val_metrics: dict[str, float] = {}
        if config.checkpoint_dir is not None:
            from .checkpoint import CheckpointManager

            self.manager = CheckpointManager(
                config.checkpoint_dir, keep_last=config.keep_last, async_save=config.async_checkpoint
            )
        # the hot path, read once
        train_call = self.strategy.train_call
        assert train_call is not None
        self.train_call = train_call
        # Lightning's (batch, batch_idx) signatures, read once
        self.pass_batch_idx = takes_batch_idx(self.task, "training_step")
        self.val_pass_batch_idx = data.val is not None and takes_batch_idx(self.task, "validation_step")
        self.batch_idx = 0
        self.forward_context = self.precision.forward_context
        self.scaler = self.precision.scaler
        self.move = self.device.type != "cpu"
        self.accum = config.grad_accum
        self.log_every = config.log_every
        self.max_steps = config.max_steps if config.max_steps is not None else float("inf")
        self.max_epochs = config.max_epochs if config.max_epochs is not None else float("inf")
        self.params: list[Any] = []
        # what the steps hand on: the current micro-batch count, the summed loss of a logging
        # step, and the last micro-batch's output, loss (divided by grad_accum) and batch
        self.micro = 0
        self.loss_sum: torch.Tensor | None = None
        self.out: Any = None
        self.loss: Any = None
        self.batch: Any = None
        self.grad_norm: Any = None

    # ------------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Load the newest checkpoint, if any: model, optimizers, schedulers, position, scaler,
        data position and RNG."""
        if self.manager is None:
            return
        path = self.manager.latest()
        if path is None:
            return
        extra = self.manager.load(
            path, model=self.task, optimizers=self.optimizers, schedulers=self.schedulers
        )
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
                f"resumed at step {self.step} from {path}, but the training data is not a "
                "ShardedDataset: the epoch restarts from its first batch (no mid-epoch resume)",
                stacklevel=4,
            )
        if "rng" in extra:
            from .checkpoint import restore_rng

            restore_rng(extra["rng"])
        self.resumed_from = str(path)

    def save(self) -> None:
        from .checkpoint import capture_rng

        extra: dict[str, Any] = {
            "trainer": {"step": self.step, "epoch": self.epoch},
            "rng": capture_rng(),
        }
        if self.data.resumable:
            extra["data"] = self.data.train.state_dict()
        if self.precision.scaler is not None:
            extra["scaler"] = self.precision.scaler.state_dict()
        path = self.manager.save(
            self.step,
            model=self.task,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            extra=extra,
        )
        self.saved_step = self.step
        self.last_checkpoint = str(path)

    # ------------------------------------------------------------------------------- loop
    def loop(self) -> FitResult:
        """Epochs until ``max_steps`` or ``max_epochs``, then the final validation and save."""
        self.params = [p for p in self.task.parameters() if p.requires_grad]
        self._start_logging()
        self.task.train()
        self._window_step = self.step
        keep_position = self.data_resumed  # a resumed ShardedDataset continues mid-epoch once
        while not self._done():
            self.begin_epoch(keep_position)
            keep_position = False
            if not self.run_epoch():
                break
            self.epoch += 1
            if self.batch is None and not self._done():
                raise TrainError("the training data yielded no batch: nothing to train on")
        return self._finish()

    def _done(self) -> bool:
        return self.step >= self.max_steps or self.epoch >= self.max_epochs

    def begin_epoch(self, keep_position: bool) -> None:
        """Tell the data which epoch starts, so it shuffles by epoch (a ShardedDataset, or a
        DataLoader's sampler); count batches from 0, or from where a resumed epoch left off."""
        self.batch_idx = 0
        if self.data.resumable:
            if keep_position:
                self.batch_idx = int(self.data.train.state_dict().get("offset", 0))
            else:
                self.data.train.set_epoch(self.epoch)
            return
        sampler = getattr(self.data.train, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)

    def run_epoch(self) -> bool:
        """One pass over the training data; False when ``max_steps`` ended it early."""
        for batch in self.data.train:
            if self.micro_step(batch):
                self.train_step()
                if self.step >= self.max_steps:
                    return False
        return True

    def micro_step(self, batch: Any) -> bool:
        """Forward and backward of one micro-batch, the gradient sync held back until the last of
        a step's ``grad_accum``; True when that step's gradients are all in."""
        if self.move:
            batch = move_to_device(batch, self.device)
        self.batch = batch
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

    def train_step(self) -> None:
        """What follows a step's backward passes: the optimizer step, the count, the logging,
        validation and checkpoint boundaries and the preemption check."""
        self.optimizer_step()
        self.step += 1
        self.heartbeat.step = self.step
        stop = self.log_step()
        self.maybe_validate()
        self.maybe_checkpoint()
        self.check_preempted(stop)

    def optimizer_step(self) -> None:
        """Unscale and clip (when clipping), step and zero every optimizer, then update the loss
        scaler and step the schedulers."""
        scaler, optimizers = self.scaler, self.optimizers
        clip = self.config.clip_grad_norm
        if clip is not None:
            if scaler is not None:
                for opt in optimizers:
                    scaler.unscale_(opt)
            self.grad_norm = self.strategy.clip_grad_norm(self.params, clip)
        for opt in optimizers:
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.update()
        for sched in self.schedulers:
            sched.step()

    def log_step(self) -> bool:
        """At a logging boundary, log (see :meth:`_log`); returns whether any rank was asked to
        stop (SIGTERM), which that same reduction tells every rank."""
        if self.step % self.log_every != 0:
            return False
        stop = self._log()
        self.loss_sum = None
        return stop

    def maybe_validate(self) -> None:
        val_every = self.config.val_every
        if val_every is not None and self.step % val_every == 0 and self.data.val is not None:
            self._validate()

    def maybe_checkpoint(self) -> None:
        every = self.config.checkpoint_every
        if every is not None and self.step % every == 0:
            self.save()

    def check_preempted(self, stop: bool) -> None:
        """Preempt when a logging step said so or when the ranks agree that SIGTERM arrived
        (:meth:`SigtermFlag.agreed`: at once in one process, the next step in a group)."""
        if stop or self.sigterm.agreed():
            self._preempt()

    def _preempt(self) -> None:
        if self.manager is not None and self.saved_step != self.step:
            self.save()
        if self.manager is not None:
            self.manager.wait()
        self._close_logging()
        destroy_process_group()
        raise Preempted(self.step, self.last_checkpoint)

    def _finish(self) -> FitResult:
        if self.data.val is not None:
            self._validate()
        if self.manager is not None:
            if self.saved_step != self.step:
                self.save()
            self.manager.wait()
        self._close_logging()
        self.task.on_fit_end()
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
        self.loggers = make_loggers(config.loggers, config.run_dir) if self.is_main else []
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

    def _log(self) -> bool:
        """One logging step: reduce the loss (and the SIGTERM flag) over ranks in one all-reduce,
        read task metrics, write loggers and the progress bar. Returns whether to stop."""
        import torch

        loss_sum = self.loss_sum
        assert loss_sum is not None
        packed = torch.stack(
            [loss_sum.reshape(()), torch.tensor(float(self.sigterm.set), device=loss_sum.device)]
        )
        world = self.env.world_size
        if world > 1:
            self.strategy.all_reduce_sum(packed)
        values = packed.tolist()
        metrics: dict[str, float] = {"loss": values[0] / world, "epoch": float(self.epoch)}
        metrics["lr"] = float(self.optimizers[0].param_groups[0]["lr"])
        grad_norm = self.grad_norm
        if grad_norm is not None:
            metrics["grad_norm"] = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if isinstance(self.out, dict):
            for name, value in self.out.items():
                if name != "loss":
                    metrics[name] = _to_float(value)
        logged = self.task._logged
        for name, value in logged.items():
            metrics[name] = _to_float(value)
        metrics.update(self._throughput())
        self.metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, self.step)
        self.progress.update(self.step, metrics)
        return values[1] > 0

    def _throughput(self) -> dict[str, float]:
        step, batch, accum = self.step, self.batch, self.accum
        steps = max(step - self._window_step, 1)
        self._window_step = step
        dp = self.strategy.dp_size
        samples = _batch_size(batch) * accum * dp * steps
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
    def _validate(self) -> dict[str, float]:
        """Mean of ``validation_step`` over the validation data on every rank, reduced over
        ranks. RNG state is put back afterwards, so validating never changes the training run."""
        import torch

        from .checkpoint import capture_rng, restore_rng

        task, val_call, val_data = self.task, self.strategy.val_call, self.data.val
        assert val_call is not None
        rng = capture_rng()
        was_training = task.training
        task.eval()
        if _resumable(val_data):
            val_data.set_epoch(0)
        names: list[str] = []
        totals: torch.Tensor | None = None
        count = 0
        with torch.no_grad(), self.precision.forward_context():
            for batch_idx, batch in enumerate(val_data):
                if self.device.type != "cpu":
                    batch = move_to_device(batch, self.device)
                out = val_call(batch, batch_idx) if self.val_pass_batch_idx else val_call(batch)
                items = out if isinstance(out, dict) else {"loss": out}
                if totals is None:
                    names = sorted(items)
                    totals = torch.zeros(len(names), device=self.device)
                totals += torch.stack([torch.as_tensor(items[n]).detach().float().reshape(()).to(self.device) for n in names])
                count += 1
        task.train(was_training)
        restore_rng(rng)
        if totals is None:
            names, totals = ["loss"], torch.zeros(1, device=self.device)
        packed = torch.cat([totals, torch.tensor([float(count)], device=self.device)])
        if self.env.world_size > 1:
            self.strategy.all_reduce_sum(packed)
        values = packed.tolist()
        seen = max(values[-1], 1.0)
        metrics = {f"val_{name}": value / seen for name, value in zip(names, values[:-1], strict=True)}
        self.val_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, self.step)
        return metrics


def _to_float(value: Any) -> float:
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    if hasattr(value, "item"):
        return float(value.detach().float().item())
    return float(value)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()
