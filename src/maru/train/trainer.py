"""The ``Trainer``: runs a :class:`~maru.train.task.Task` on one process or many and gets out of
the way.

The step loop is what one would write by hand — forward under the precision's context, backward,
optimizer and scheduler step — plus integer compares for logging, validation and checkpoint
boundaries. Nothing reads a value off the device between logging steps; the loss of a logging
step, reduced over ranks, is the only sync.

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
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrainError
from .dist import DistEnv, Preempted, SigtermFlag, destroy_process_group, init_process_group
from .precision import Precision
from .strategies import Strategy, resolve_strategy
from .task import Task, split_optimizers
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

    Give ``max_steps`` or ``max_epochs`` (or both: whichever ends first). ``strategy`` is
    ``"auto"`` (one process: plain; several: DDP), ``"ddp"``, ``"fsdp"``, ``"tp"``, ``"dp_tp"``
    (with ``tp_size``) or a :class:`~maru.train.strategies.Strategy`. The trainer seeds every
    generator with ``seed`` when constructed, so a task built after the trainer starts identical on
    every rank; ``fit`` then reseeds with ``seed + data-parallel rank`` for per-rank randomness.
    """

    def __init__(
        self,
        *,
        max_steps: int | None = None,
        max_epochs: int | None = None,
        strategy: str | Strategy = "auto",
        tp_size: int | None = None,
        precision: str = "32",
        grad_accum: int = 1,
        clip_grad_norm: float | None = None,
        log_every: int = 10,
        val_every: int | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        keep_last: int = 3,
        async_checkpoint: bool = False,
        seed: int = 0,
        run_dir: str | Path | None = None,
        loggers: Any = "auto",
        progress: bool = True,
        device: str | torch.device | None = None,
        deterministic: bool = False,
        hang_timeout_s: float | None = None,
    ) -> None:
        if max_steps is None and max_epochs is None:
            raise TrainError("give the Trainer max_steps or max_epochs (or both)")
        for name, value in (
            ("max_steps", max_steps),
            ("max_epochs", max_epochs),
            ("grad_accum", grad_accum),
            ("log_every", log_every),
            ("val_every", val_every),
            ("checkpoint_every", checkpoint_every),
            ("keep_last", keep_last),
        ):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise TrainError(f"{name} must be a positive integer, not {value!r}")
        if checkpoint_dir is None and os.environ.get("MARU_CHECKPOINT_DIR"):
            checkpoint_dir = os.environ["MARU_CHECKPOINT_DIR"]  # set by maru launch
        if checkpoint_every is not None and checkpoint_dir is None:
            raise TrainError("checkpoint_every needs checkpoint_dir (where to write checkpoints)")
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self.strategy = strategy
        self.tp_size = tp_size
        self.precision = precision
        self.grad_accum = grad_accum
        self.clip_grad_norm = clip_grad_norm
        self.log_every = log_every
        self.val_every = val_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.keep_last = keep_last
        self.async_checkpoint = async_checkpoint
        self.seed = seed
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.loggers_spec = loggers
        self.progress = progress
        self.device = device
        self.deterministic = deterministic
        self.hang_timeout_s = hang_timeout_s
        self.step = 0
        self.epoch = 0
        self.env = DistEnv.from_environ()
        self.heartbeat = Heartbeat()
        seed_everything(seed)

    # ----------------------------------------------------------------------------------- set-up
    def _pick_device(self) -> torch.device:
        import torch

        if self.device is not None:
            return torch.device(self.device)
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
        watchdog = _start_watchdog(self.hang_timeout_s, self.heartbeat)
        try:
            return self._fit(task, train_data, val_data, sigterm)
        finally:
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

        if self.deterministic:
            self._set_deterministic()
        device = self._pick_device()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        strategy = resolve_strategy(self.strategy, self.env, tp_size=self.tp_size)
        precision = Precision(self.precision, device, fsdp=strategy.uses_fsdp)
        strategy.setup(task, self.env, device, precision)
        seed_everything(self.seed + strategy.dp_rank)
        optimizers, schedulers = split_optimizers(task.configure_optimizers())
        resumable = _resumable(train_data)
        if resumable:
            train_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        if val_data is not None and _resumable(val_data):
            val_data.shard(strategy.dp_rank, strategy.dp_size)  # type: ignore[attr-defined]
        run = _Run(self, task, strategy, precision, device, optimizers, schedulers, sigterm)
        run.resume(train_data, resumable)
        return run.loop(train_data, val_data, resumable)


def _start_watchdog(timeout_s: float | None, heartbeat: Heartbeat) -> Watchdog | None:
    """The hang watchdog (see :mod:`maru.train.watchdog`) when a timeout is configured."""
    timeout = timeout_s if timeout_s is not None else timeout_from_env()
    return Watchdog(timeout, heartbeat).start() if timeout else None


class _Run:
    """One ``fit`` call's state. Kept apart from the Trainer so the loop reads locals."""

    def __init__(
        self,
        trainer: Trainer,
        task: Task,
        strategy: Strategy,
        precision: Precision,
        device: torch.device,
        optimizers: list[Any],
        schedulers: list[Any],
        sigterm: SigtermFlag,
    ) -> None:
        self.t = trainer
        self.task = task
        self.strategy = strategy
        self.precision = precision
        self.device = device
        self.optimizers = optimizers
        self.schedulers = schedulers
        self.sigterm = sigterm
        self.is_main = trainer.env.rank == 0
        self.manager: Any = None
        self.resumed_from: str | None = None
        self.saved_step: int | None = None
        self.last_checkpoint: str | None = None
        self.metrics: dict[str, float] = {}
        self.val_metrics: dict[str, float] = {}
        if trainer.checkpoint_dir is not None:
            from .checkpoint import CheckpointManager

            self.manager = CheckpointManager(
                trainer.checkpoint_dir, keep_last=trainer.keep_last, async_save=trainer.async_checkpoint
            )

    # ------------------------------------------------------------------------ checkpoints
    def resume(self, train_data: Any, resumable: bool) -> None:
        self.t.step, self.t.epoch = 0, 0
        self.data_resumed = False
        if self.manager is None:
            return
        path = self.manager.latest()
        if path is None:
            return
        extra = self.manager.load(
            path, model=self.task, optimizers=self.optimizers, schedulers=self.schedulers
        )
        state = extra.get("trainer", {})
        self.t.step, self.t.epoch = int(state.get("step", 0)), int(state.get("epoch", 0))
        self.saved_step = self.t.step
        if self.precision.scaler is not None and "scaler" in extra:
            self.precision.scaler.load_state_dict(extra["scaler"])
        if resumable and "data" in extra:
            train_data.load_state_dict(extra["data"])
            self.data_resumed = True
        elif not resumable:
            warnings.warn(
                f"resumed at step {self.t.step} from {path}, but the training data is not a "
                "ShardedDataset: the epoch restarts from its first batch (no mid-epoch resume)",
                stacklevel=4,
            )
        if "rng" in extra:
            from .checkpoint import restore_rng

            restore_rng(extra["rng"])
        self.resumed_from = str(path)

    def save(self, train_data: Any, resumable: bool) -> None:
        from .checkpoint import capture_rng

        extra: dict[str, Any] = {
            "trainer": {"step": self.t.step, "epoch": self.t.epoch},
            "rng": capture_rng(),
        }
        if resumable:
            extra["data"] = train_data.state_dict()
        if self.precision.scaler is not None:
            extra["scaler"] = self.precision.scaler.state_dict()
        path = self.manager.save(
            self.t.step,
            model=self.task,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            extra=extra,
        )
        self.saved_step = self.t.step
        self.last_checkpoint = str(path)

    # ------------------------------------------------------------------------------- loop
    def loop(self, train_data: Any, val_data: Any, resumable: bool) -> FitResult:
        t = self.t
        task, strategy, precision = self.task, self.strategy, self.precision
        train_call = strategy.train_call
        assert train_call is not None
        forward_context = precision.forward_context
        scaler = precision.scaler
        optimizers, schedulers = self.optimizers, self.schedulers
        params = [p for p in task.parameters() if p.requires_grad]
        accum, clip = t.grad_accum, t.clip_grad_norm
        log_every, val_every, ckpt_every = t.log_every, t.val_every, t.checkpoint_every
        max_steps = t.max_steps if t.max_steps is not None else float("inf")
        max_epochs = t.max_epochs if t.max_epochs is not None else float("inf")
        move = self.device.type != "cpu"
        device = self.device
        distributed = t.env.distributed
        sigterm = self.sigterm
        heartbeat = t.heartbeat

        self._start_logging(train_data)
        task.train()
        step, epoch = t.step, t.epoch
        micro = 0
        loss_sum: torch.Tensor | None = None
        loss: Any = None
        grad_norm: Any = None
        batch: Any = None
        done = step >= max_steps or epoch >= max_epochs
        first_epoch = True
        self._window_start, self._window_step = time.perf_counter(), step
        while not done:
            if resumable and not (first_epoch and self.data_resumed):
                train_data.set_epoch(epoch)
            elif not resumable:
                sampler = getattr(train_data, "sampler", None)
                if sampler is not None and hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
            first_epoch = False
            for batch in train_data:
                if move:
                    batch = move_to_device(batch, device)
                micro += 1
                sync = micro == accum
                logging_now = (step + 1) % log_every == 0
                with strategy.no_sync(sync) if accum > 1 else _NULL, forward_context():
                    out = train_call(batch)
                loss = out["loss"] if isinstance(out, dict) else out
                if accum > 1:
                    loss = loss / accum
                if logging_now:
                    detached = loss.detach().float()
                    loss_sum = detached if loss_sum is None else loss_sum + detached
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
                if not sync:
                    continue
                micro = 0
                if clip is not None:
                    if scaler is not None:
                        for opt in optimizers:
                            scaler.unscale_(opt)
                    grad_norm = strategy.clip_grad_norm(params, clip)
                for opt in optimizers:
                    if scaler is not None:
                        scaler.step(opt)
                    else:
                        opt.step()
                    opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.update()
                for sched in schedulers:
                    sched.step()
                step += 1
                t.step = step
                heartbeat.step = step
                stop = False
                if logging_now:
                    stop = self._log(step, epoch, loss_sum, out, grad_norm, batch, accum)
                    loss_sum = None
                if val_every is not None and step % val_every == 0 and val_data is not None:
                    self._validate(val_data, step)
                if ckpt_every is not None and step % ckpt_every == 0:
                    self.save(train_data, resumable)
                if stop or (not distributed and sigterm.set):
                    self._preempt(train_data, resumable)
                if step >= max_steps:
                    done = True
                    break
            else:
                epoch += 1
                t.epoch = epoch
                if epoch >= max_epochs:
                    done = True
            if batch is None and not done:
                raise TrainError("the training data yielded no batch: nothing to train on")
        return self._finish(train_data, val_data, resumable, loss, accum)

    def _preempt(self, train_data: Any, resumable: bool) -> None:
        if self.manager is not None and self.saved_step != self.t.step:
            self.save(train_data, resumable)
        if self.manager is not None:
            self.manager.wait()
        self._close_logging()
        destroy_process_group()
        raise Preempted(self.t.step, self.last_checkpoint)

    def _finish(self, train_data: Any, val_data: Any, resumable: bool, loss: Any, accum: int) -> FitResult:
        t = self.t
        if val_data is not None:
            self._validate(val_data, t.step)
        if self.manager is not None:
            if self.saved_step != t.step:
                self.save(train_data, resumable)
            self.manager.wait()
        self._close_logging()
        self.task.on_fit_end()
        last = float(loss.detach().float().item()) * accum if loss is not None else None
        return FitResult(
            step=t.step,
            epoch=t.epoch,
            loss=last,
            metrics=dict(self.metrics),
            val_metrics=dict(self.val_metrics),
            checkpoint=self.last_checkpoint,
            resumed_from=self.resumed_from,
            run_dir=str(t.run_dir) if t.run_dir is not None else None,
        )

    # ---------------------------------------------------------------------------- logging
    def _start_logging(self, train_data: Any) -> None:
        from .loggers import make_loggers
        from .metrics import ThroughputMeter
        from .progress import ProgressBar

        t = self.t
        self.loggers = make_loggers(t.loggers_spec, t.run_dir) if self.is_main else []
        total: int | None = t.max_steps
        if total is None and t.max_epochs is not None and hasattr(train_data, "__len__"):
            total = t.max_epochs * len(train_data) // t.grad_accum
        self.progress = ProgressBar(total, enabled=t.progress and self.is_main)
        self.meter = ThroughputMeter(device=self.device, dtype=self.precision.name)
        self.meter.start_step(sync=True)
        for logger in self.loggers:
            logger.log_hparams(self._hparams())

    def _hparams(self) -> dict[str, Any]:
        t = self.t
        return {
            "max_steps": t.max_steps,
            "max_epochs": t.max_epochs,
            "strategy": self.strategy.name,
            "precision": self.precision.name,
            "grad_accum": t.grad_accum,
            "clip_grad_norm": t.clip_grad_norm,
            "seed": t.seed,
            "world_size": t.env.world_size,
            "task": type(self.task).__name__,
        }

    def _log(
        self, step: int, epoch: int, loss_sum: Any, out: Any, grad_norm: Any, batch: Any, accum: int
    ) -> bool:
        """One logging step: reduce the loss (and the SIGTERM flag) over ranks in one all-reduce,
        read task metrics, write loggers and the progress bar. Returns whether to stop."""
        import torch

        packed = torch.stack(
            [loss_sum.reshape(()), torch.tensor(float(self.sigterm.set), device=loss_sum.device)]
        )
        world = self.t.env.world_size
        if world > 1:
            self.strategy.all_reduce_sum(packed)
        values = packed.tolist()
        metrics: dict[str, float] = {"loss": values[0] / world, "epoch": float(epoch)}
        metrics["lr"] = float(self.optimizers[0].param_groups[0]["lr"])
        if grad_norm is not None:
            metrics["grad_norm"] = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if isinstance(out, dict):
            for name, value in out.items():
                if name != "loss":
                    metrics[name] = _to_float(value)
        logged = self.task._logged
        for name, value in logged.items():
            metrics[name] = _to_float(value)
        metrics.update(self._throughput(step, batch, accum))
        self.metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step)
        self.progress.update(step, metrics)
        return values[1] > 0

    def _throughput(self, step: int, batch: Any, accum: int) -> dict[str, float]:
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
    def _validate(self, val_data: Any, step: int) -> dict[str, float]:
        """Mean of ``validation_step`` over ``val_data`` on every rank, reduced over ranks. RNG
        state is put back afterwards, so validating never changes the training run."""
        import torch

        from .checkpoint import capture_rng, restore_rng

        task, val_call = self.task, self.strategy.val_call
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
            for batch in val_data:
                if self.device.type != "cpu":
                    batch = move_to_device(batch, self.device)
                out = val_call(batch)
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
        if self.t.env.world_size > 1:
            self.strategy.all_reduce_sum(packed)
        values = packed.tolist()
        seen = max(values[-1], 1.0)
        metrics = {f"val_{name}": value / seen for name, value in zip(names, values[:-1], strict=True)}
        self.val_metrics = metrics
        for logger in self.loggers:
            logger.log_metrics(metrics, step)
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
