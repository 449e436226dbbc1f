"""The Trainer's settings as one frozen, validated value: :class:`TrainerConfig`.

``Trainer(max_steps=100, precision="bf16-mixed")`` and
``Trainer(config=TrainerConfig(max_steps=100, precision="bf16-mixed"))`` build the same trainer.
Every value is checked here, once, when the config is made (not at the first step of ``fit``), and
all the problems found are reported together in one :class:`~maru.errors.TrainError` that says
what to pass instead. A config is frozen, so the settings a run started with are the ones it ends
with; :func:`dataclasses.replace` makes a changed copy (checked again).

A plain dataclass rather than a pydantic model: building a Trainer stays a few microseconds and
imports nothing heavy.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..errors import TrainError
from .precision import canonical_precision
from .scale import CheckpointSpec, CompileSpec, check_checkpointing, check_compile
from .strategies import Strategy, check_strategy

if TYPE_CHECKING:
    import torch

# Settings that count something: each must be a positive integer when given.
_COUNTS = (
    "max_steps",
    "max_epochs",
    "tp_size",
    "grad_accum",
    "log_every",
    "val_every",
    "checkpoint_every",
    "keep_last",
    "check_val_every_n_epoch",
)


@dataclass(frozen=True, slots=True)
class TrainerConfig:
    """How a :class:`~maru.train.Trainer` runs. Every field is also a keyword of ``Trainer``.

    - ``max_steps`` / ``max_epochs``: when to stop (give one or both; whichever ends first).
    - ``strategy``: ``"auto"``, ``"single"``, ``"ddp"``, ``"fsdp"``, ``"tp"``, ``"dp_tp"`` (with
      ``tp_size``) or a :class:`~maru.train.strategies.Strategy`.
    - ``precision``: ``"32"``, ``"bf16-mixed"``, ``"16-mixed"`` or ``"bf16-true"`` (parameters
      in bfloat16, no float32 copy), or an alias such as ``"bf16"``.
    - ``grad_accum``: micro-batches per optimizer step; ``clip_grad_norm``: the global gradient
      norm to clip to (``float("inf")`` logs the norm without clipping).
    - ``log_every`` / ``val_every`` / ``checkpoint_every``: boundaries, in optimizer steps.
    - ``checkpoint_dir``: where checkpoints go and resume comes from; ``None`` takes
      ``$MARU_CHECKPOINT_DIR`` when set (``maru launch`` sets it). ``keep_last`` checkpoints are
      kept; ``async_checkpoint`` writes them in the background.
    - ``seed``: seeds every generator (``fit`` adds the data-parallel rank).
    - ``run_dir`` / ``loggers`` / ``progress``: where and how metrics are written and shown.
    - ``device``: the device to train on (default: this rank's GPU, else the CPU);
      ``deterministic``: deterministic kernels.
    - ``hang_timeout_s``: seconds without a step before the watchdog kills the process (``0``:
      off; ``None``: ``$MARU_HANG_TIMEOUT_S``).
    - When to validate (with validation data): every ``val_every`` optimizer steps, or as
      Lightning says it — ``val_check_interval`` (an int: every N steps; a fraction: that part of
      an epoch) or ``check_val_every_n_epoch`` (default 1 when no step interval is given); always
      once more at the end of ``fit`` unless that step was just validated, never twice.
    - ``limit_train_batches`` / ``limit_val_batches``: batches per epoch / per validation pass, as
      a count or a fraction of the data's length; ``fast_dev_run``: ``True`` or n — n training
      and n validation batches, no checkpoints and no loggers, to see that everything runs.
    - ``max_time``: stop cleanly after this long — seconds, ``"DD:HH:MM:SS"``, a ``timedelta`` or
      a dict of ``timedelta`` keywords (as Lightning).
    - ``compile``: ``torch.compile`` each block of the task (``True``, or a dict of
      ``torch.compile`` options); checkpoint keys stay those of the uncompiled task.
    - ``activation_checkpointing``: recompute these submodules' activations in the backward pass
      — ``True`` (the task's ``fsdp_units()``), a module class, or a predicate on a module.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    strategy: str | Strategy = "auto"
    tp_size: int | None = None
    precision: str = "32"
    grad_accum: int = 1
    clip_grad_norm: float | None = None
    log_every: int = 10
    val_every: int | None = None
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int | None = None
    keep_last: int = 3
    async_checkpoint: bool = False
    seed: int = 0
    run_dir: str | Path | None = None
    loggers: Any = "auto"
    progress: bool = True
    device: str | torch.device | None = None
    deterministic: bool = False
    hang_timeout_s: float | None = None
    val_check_interval: int | float | None = None
    check_val_every_n_epoch: int | None = None
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    fast_dev_run: int | bool = False
    max_time: float | str | timedelta | dict[str, int] | None = None
    compile: CompileSpec = False
    activation_checkpointing: CheckpointSpec = None

    def __post_init__(self) -> None:
        if self.checkpoint_dir is None and os.environ.get("MARU_CHECKPOINT_DIR"):
            object.__setattr__(self, "checkpoint_dir", os.environ["MARU_CHECKPOINT_DIR"])
        for name in ("checkpoint_dir", "run_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        problems = _problems(self)
        if len(problems) == 1:
            raise TrainError(problems[0])
        if problems:
            listed = "\n".join(f"  - {problem}" for problem in problems)
            raise TrainError(f"the Trainer settings have {len(problems)} problems:\n{listed}")


class TrainerSettings(TypedDict, total=False):
    """The keyword arguments of ``Trainer(...)``: :class:`TrainerConfig`'s fields (a test keeps
    the two in step), so type checkers see the same keywords as before the config existed."""

    max_steps: int | None
    max_epochs: int | None
    strategy: str | Strategy
    tp_size: int | None
    precision: str
    grad_accum: int
    clip_grad_norm: float | None
    log_every: int
    val_every: int | None
    checkpoint_dir: str | Path | None
    checkpoint_every: int | None
    keep_last: int
    async_checkpoint: bool
    seed: int
    run_dir: str | Path | None
    loggers: Any
    progress: bool
    device: str | torch.device | None
    deterministic: bool
    hang_timeout_s: float | None
    val_check_interval: int | float | None
    check_val_every_n_epoch: int | None
    limit_train_batches: int | float | None
    limit_val_batches: int | float | None
    fast_dev_run: int | bool
    max_time: float | str | timedelta | dict[str, int] | None
    compile: CompileSpec
    activation_checkpointing: CheckpointSpec


def _problems(config: TrainerConfig) -> list[str]:
    """Everything wrong with ``config``, each as what is wrong and what to pass instead."""
    problems: list[str] = []
    if (
        config.max_steps is None
        and config.max_epochs is None
        and not config.fast_dev_run
        and config.max_time is None
    ):
        problems.append("give the Trainer max_steps or max_epochs (or both)")
    for name in _COUNTS:
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(f"{name} must be a positive integer, not {value!r}")
    if config.checkpoint_every is not None and config.checkpoint_dir is None:
        problems.append("checkpoint_every needs checkpoint_dir (where to write checkpoints)")
    if config.clip_grad_norm is not None and not _positive_number(config.clip_grad_norm):
        problems.append(
            f"clip_grad_norm must be a positive number (or None: no clipping), not "
            f"{config.clip_grad_norm!r}"
        )
    timeout = config.hang_timeout_s
    if timeout is not None and not (_positive_number(timeout) or timeout == 0):
        problems.append(
            f"hang_timeout_s must be a number of seconds >= 0 (0: no watchdog), not {timeout!r}"
        )
    if not isinstance(config.seed, int):
        problems.append(f"seed must be an integer, not {config.seed!r}")
    problems.extend(_choice_problems(config))
    problems.extend(_loop_problems(config))
    return problems


def _loop_problems(config: TrainerConfig) -> list[str]:
    """The validation interval, batch limits, fast_dev_run and max_time checks."""
    problems = []
    interval = config.val_check_interval
    if interval is not None and not (_count_or_fraction(interval) and interval != 0):
        problems.append(
            f"val_check_interval must be a positive number of steps or a fraction of an epoch "
            f"in (0, 1], not {interval!r}"
        )
    if interval is not None and config.val_every is not None:
        problems.append("give val_every or val_check_interval, not both (they say the same)")
    for name in ("limit_train_batches", "limit_val_batches"):
        value = getattr(config, name)
        if value is not None and not _count_or_fraction(value):
            problems.append(f"{name} must be a number of batches or a fraction in [0, 1], not {value!r}")
    dev = config.fast_dev_run
    if not isinstance(dev, int) or dev < 0:
        problems.append(f"fast_dev_run must be True/False or a number of batches, not {dev!r}")
    try:
        max_time_seconds(config.max_time)
    except TrainError as exc:
        problems.append(str(exc))
    return problems


def _count_or_fraction(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and 0.0 <= value <= 1.0


def max_time_seconds(value: float | str | timedelta | dict[str, int] | None) -> float | None:
    """``max_time`` in seconds: a number, ``"DD:HH:MM:SS"``, a ``timedelta`` or a dict of its
    keywords (``{"hours": 2}``); ``None`` stays ``None``."""
    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, dict):
        try:
            seconds = timedelta(**value).total_seconds()
        except TypeError:
            seconds = None
    elif isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 4 and all(part.strip().isdigit() for part in parts):
            days, hours, minutes, secs = (int(part) for part in parts)
            seconds = timedelta(days=days, hours=hours, minutes=minutes, seconds=secs).total_seconds()
    elif _positive_number(value):
        seconds = float(value)
    if seconds is None or seconds <= 0:
        raise TrainError(
            f"max_time must be a positive number of seconds, 'DD:HH:MM:SS', a timedelta or a dict "
            f"such as {{'hours': 2}}, not {value!r}"
        )
    return seconds


def _choice_problems(config: TrainerConfig) -> list[str]:
    """The precision and strategy checks, which live beside what they check."""
    problems = []
    try:
        canonical_precision(config.precision)
    except TrainError as exc:
        problems.append(str(exc))
    try:
        check_strategy(config.strategy, config.tp_size)
    except TrainError as exc:
        problems.append(str(exc))
    for check, value in (
        (check_compile, config.compile),
        (check_checkpointing, config.activation_checkpointing),
    ):
        try:
            check(value)
        except TrainError as exc:
            problems.append(str(exc))
    return problems


def _positive_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) > 0
