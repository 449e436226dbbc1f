"""Switches for large models, applied to the task before a strategy wraps or shards it:
activation checkpointing per block, then ``torch.compile`` per block.

The order is torchtitan's (checkpoint → compile → FSDP): FSDP2's ``fully_shard`` then goes on the
checkpointed blocks, and its hooks stay outside the compiled code.

Compiling replaces each block's ``forward`` with its compiled version in place rather than putting
the block inside an ``OptimizedModule``, so parameter names — and so checkpoint keys — carry no
``_orig_mod.``: a checkpoint written with ``compile`` loads without it and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TrainError

if TYPE_CHECKING:
    from torch import nn

    from .config import TrainerConfig
    from .precision import Precision
    from .task import Task

# What ``activation_checkpointing=`` takes: True (the task's blocks, ``fsdp_units()``), a module
# class (every instance of it) or a predicate on a module.
CheckpointSpec = bool | type | Callable[[Any], bool] | None
# What ``compile=`` takes: True, or the keyword arguments of ``torch.compile`` (a backend, a mode).
CompileSpec = bool | dict[str, Any]


def check_checkpointing(spec: object) -> None:
    """A :class:`~maru.errors.TrainError` saying what to pass when ``spec`` selects no modules."""
    if spec is None or isinstance(spec, bool) or callable(spec):
        return
    raise TrainError(
        f"activation_checkpointing must be True (the task's fsdp_units()), a module class or a "
        f"function module -> bool, not {spec!r}"
    )


def check_compile(spec: object) -> None:
    """A :class:`~maru.errors.TrainError` unless ``spec`` is a bool or a dict of options."""
    if isinstance(spec, bool) or (isinstance(spec, dict) and all(isinstance(k, str) for k in spec)):
        return
    raise TrainError(
        f"compile must be True/False or a dict of torch.compile options such as "
        f"{{'backend': 'inductor', 'mode': 'max-autotune'}}, not {spec!r}"
    )


def prepare_task(task: Task, precision: Precision, config: TrainerConfig) -> None:
    """Before the strategy runs: cast ``task`` to the precision's parameter dtype (bf16-true),
    then apply activation checkpointing, then compilation, in place. Nothing when all are off;
    applying them twice to one task (a second ``fit``) does nothing more."""
    precision.convert_module(task)
    if config.activation_checkpointing:
        apply_checkpointing(task, config.activation_checkpointing)
    spec = config.compile
    if spec:
        compile_blocks(task, spec if isinstance(spec, dict) else {})


def apply_checkpointing(task: Task, spec: CheckpointSpec) -> int:
    """Wrap each selected submodule in torch's ``checkpoint_wrapper`` (non-reentrant: its
    activations are recomputed in the backward pass). Returns how many were wrapped; none is an
    error, since a switch that silently does nothing would hide a memory problem."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointWrapper,
        apply_activation_checkpointing,
    )

    selected = _selector(task, spec)
    if any(isinstance(m, CheckpointWrapper) for m in task.modules()):
        return 0
    count = sum(1 for m in task.modules() if m is not task and selected(m))
    if count == 0:
        raise TrainError(
            f"activation_checkpointing={spec!r} selects no submodule of {type(task).__name__}; "
            "pass the class of its blocks, a predicate, or define fsdp_units()"
        )
    apply_activation_checkpointing(task, check_fn=selected)
    return count


def _selector(task: Task, spec: CheckpointSpec) -> Callable[[Any], bool]:
    if spec is True:
        units = {id(unit) for unit in task.fsdp_units()}
        return lambda module: id(module) in units
    if isinstance(spec, type):
        cls = spec
        return lambda module: isinstance(module, cls)
    if callable(spec):
        return spec
    raise TrainError(f"activation_checkpointing={spec!r} selects nothing")  # pragma: no cover


def compile_targets(task: Task) -> list[nn.Module]:
    """The modules to compile: the task's blocks (``fsdp_units()``) when it has any — as
    torchtitan compiles each transformer block — else each direct child that holds parameters."""
    units = list(task.fsdp_units())
    if units:
        return units
    return [child for child in task.children() if next(child.parameters(), None) is not None]


def compile_blocks(task: Task, options: dict[str, Any]) -> list[nn.Module]:
    """Compile each of :func:`compile_targets` in place (its ``forward`` becomes the compiled
    one; names and hooks are untouched). Returns the compiled modules."""
    import torch

    targets = compile_targets(task)
    if not targets:
        raise TrainError(
            f"compile=True found nothing to compile in {type(task).__name__}: it has no fsdp_units() "
            "and no child module with parameters"
        )
    for module in targets:
        if getattr(module, "_maru_compiled", False):
            continue
        module.forward = torch.compile(module.forward, **options)  # type: ignore[method-assign]
        module._maru_compiled = True  # type: ignore[assignment]
    return targets
