"""Parallel strategies, composed on a ``DeviceMesh``: one process, DDP, FSDP2, tensor parallel, and
data parallel × tensor parallel.

A strategy prepares the task once (wrap, shard, parallelize) and then hands the trainer plain
callables for the hot path, so a step costs what a hand-written loop costs.

What runs where (torch 2.13): every strategy runs on CPU with gloo — DDP, FSDP2 (``fully_shard``;
gloo has the all-gather and reduce-scatter it needs), TP (``parallelize_module``) and dp × tp. On
GPUs the same code uses NCCL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import TrainError

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.distributed.device_mesh import DeviceMesh

    from .dist import DistEnv
    from .precision import Precision
    from .task import Task

STRATEGIES = ("auto", "single", "ddp", "fsdp", "tp", "dp_tp")


class Strategy:
    """Base: a single process. Subclasses override :meth:`setup` and the accumulation context."""

    name = "single"

    def __init__(self) -> None:
        self.mesh: DeviceMesh | None = None
        self.dp_rank = 0
        self.dp_size = 1
        self.train_call: Callable[..., Any] | None = None
        self.val_call: Callable[..., Any] | None = None

    def setup(self, task: Task, env: DistEnv, device: torch.device, precision: Precision) -> None:
        """Place and wrap ``task``; set ``train_call``/``val_call`` and the data-parallel rank."""
        task.to(device)
        self.train_call = task.training_step
        self.val_call = task.validation_step

    def no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        """Context for one micro-batch of gradient accumulation: skip the gradient reduction
        unless ``sync`` (the last micro-batch before the optimizer step)."""
        return contextlib.nullcontext()

    def clip_grad_norm(self, params: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
        return clip_grad_norm(params, max_norm)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over every rank in place (no-op in one process)."""
        return tensor

    @property
    def uses_fsdp(self) -> bool:
        return False


class _Distributed(Strategy):
    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(tensor)
        return tensor


class _StepModule:
    """Built lazily as an ``nn.Module`` whose ``forward`` is the task's ``training_step``, so DDP's
    forward hooks (bucket preparation) run around it. Parameters stay the task's own objects."""

    @staticmethod
    def make(task: Task) -> nn.Module:
        from torch import nn

        class StepModule(nn.Module):
            def __init__(self, inner: Task) -> None:
                super().__init__()
                self.task = inner

            def forward(self, batch: Any, *batch_idx: int) -> Any:
                return self.task.training_step(batch, *batch_idx)

        return StepModule(task)


class DDP(_Distributed):
    """``DistributedDataParallel`` over the data-parallel group (all ranks, or ``dp`` of a mesh).

    Chosen over the composable ``replicate`` for its C++ reducer with bucketed, overlapped
    all-reduce, the mature steady-state path on both gloo and NCCL.

    Gradients are views into the reducer's buckets (``gradient_as_bucket_view=True``): the same
    values without copying every gradient into its bucket and back each step, and one copy of
    the gradients in memory instead of two. Other keywords (``static_graph``, ``bucket_cap_mb``,
    ``find_unused_parameters``, ``broadcast_buffers``…) go to ``DistributedDataParallel``."""

    name = "ddp"

    def __init__(self, *, gradient_as_bucket_view: bool = True, **ddp_kwargs: Any) -> None:
        super().__init__()
        self.ddp_kwargs = {"gradient_as_bucket_view": gradient_as_bucket_view, **ddp_kwargs}

    def setup(self, task: Task, env: DistEnv, device: torch.device, precision: Precision) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        task.to(device)
        self.mesh = init_device_mesh(device.type, (env.world_size,), mesh_dim_names=("dp",))
        self.dp_rank, self.dp_size = env.rank, env.world_size
        self._wrap(task, device, self.mesh)

    def _wrap(self, task: Task, device: torch.device, dp_mesh: DeviceMesh) -> None:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" and device.index is not None else None
        self.ddp = DistributedDataParallel(
            _StepModule.make(task),
            device_ids=ids,
            process_group=dp_mesh.get_group(),
            **self.ddp_kwargs,
        )
        self.train_call = self.ddp
        self.val_call = task.validation_step

    def no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if sync else self.ddp.no_sync()


class FSDP(_Distributed):
    """FSDP2: ``fully_shard`` on each of ``task.fsdp_units()`` then on the task (the root), with the
    precision's ``MixedPrecisionPolicy``. Parameters become DTensors sharded over ``dp``."""

    name = "fsdp"

    def __init__(self, *, reshard_after_forward: bool = True) -> None:
        super().__init__()
        self.reshard_after_forward = reshard_after_forward

    @property
    def uses_fsdp(self) -> bool:
        return True

    def setup(self, task: Task, env: DistEnv, device: torch.device, precision: Precision) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        task.to(device)
        broadcast_module(task)
        self.mesh = init_device_mesh(device.type, (env.world_size,), mesh_dim_names=("dp",))
        self.dp_rank, self.dp_size = env.rank, env.world_size
        self._shard(task, self.mesh, precision)

    def _shard(self, task: Task, dp_mesh: DeviceMesh, precision: Precision) -> None:
        from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

        kwargs: dict[str, Any] = {"mesh": dp_mesh}
        policy = precision.fsdp_policy()
        if policy is not None:
            kwargs["mp_policy"] = policy
        for unit in task.fsdp_units():
            fully_shard(unit, reshard_after_forward=self.reshard_after_forward, **kwargs)
        fully_shard(task, **kwargs)
        # The trainer calls these methods rather than forward: FSDP must unshard around them too.
        register_fsdp_forward_method(task, "training_step")
        register_fsdp_forward_method(task, "validation_step")
        self.fsdp_root = task
        self.train_call = task.training_step
        self.val_call = task.validation_step

    def no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        self.fsdp_root.set_requires_gradient_sync(sync)  # type: ignore[operator]
        return contextlib.nullcontext()


class TP(_Distributed):
    """Tensor parallel over every rank: the task's own ``parallelize(mesh)`` applies its plan."""

    name = "tp"

    def __init__(self, tp_size: int | None = None) -> None:
        super().__init__()
        self.tp_size = tp_size

    def setup(self, task: Task, env: DistEnv, device: torch.device, precision: Precision) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        if self.tp_size not in (None, env.world_size):
            raise TrainError(
                f"strategy 'tp' uses every rank: tp_size={self.tp_size} but world size is "
                f"{env.world_size}; use strategy='dp_tp' to combine data and tensor parallel"
            )
        _require_parallelize(task)
        task.to(device)
        broadcast_module(task)
        self.mesh = init_device_mesh(device.type, (env.world_size,), mesh_dim_names=("tp",))
        task.parallelize(self.mesh)
        self.train_call = task.training_step
        self.val_call = task.validation_step


class DPxTP(_Distributed):
    """2D mesh ``("dp", "tp")``: the task's TP plan inside each ``tp`` group, then FSDP2 (default)
    or DDP across ``dp``."""

    name = "dp_tp"

    def __init__(self, tp_size: int, *, dp: str = "fsdp") -> None:
        super().__init__()
        if dp not in ("fsdp", "ddp"):
            raise TrainError(f"dp_tp data-parallel part must be 'fsdp' or 'ddp', not {dp!r}")
        self.tp_size = tp_size
        self.dp = dp
        self._inner: FSDP | DDP = FSDP() if dp == "fsdp" else DDP()

    @property
    def uses_fsdp(self) -> bool:
        return self.dp == "fsdp"

    def setup(self, task: Task, env: DistEnv, device: torch.device, precision: Precision) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        if self.tp_size < 1 or env.world_size % self.tp_size:
            raise TrainError(
                f"dp_tp needs the world size ({env.world_size}) to be a multiple of "
                f"tp_size ({self.tp_size})"
            )
        _require_parallelize(task)
        task.to(device)
        broadcast_module(task)
        dp_size = env.world_size // self.tp_size
        self.mesh = init_device_mesh(
            device.type, (dp_size, self.tp_size), mesh_dim_names=("dp", "tp")
        )
        task.parallelize(self.mesh["tp"])
        self.dp_rank, self.dp_size = self.mesh["dp"].get_local_rank(), dp_size
        if isinstance(self._inner, FSDP):
            self._inner._shard(task, self.mesh["dp"], precision)
        else:
            self._inner._wrap(task, device, self.mesh["dp"])
        self.train_call, self.val_call = self._inner.train_call, self._inner.val_call

    def no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        return self._inner.no_sync(sync)


def _require_parallelize(task: Task) -> None:
    from .task import Task

    if type(task).parallelize is Task.parallelize:
        raise TrainError(
            f"tensor parallel needs a plan: {type(task).__name__} must define parallelize(mesh) and "
            "apply it with torch.distributed.tensor.parallel.parallelize_module"
        )


def check_strategy(strategy: str | Strategy, tp_size: int | None = None) -> None:
    """A :class:`~maru.errors.TrainError` saying what to pass when ``strategy`` (with ``tp_size``)
    names no strategy; checked when the trainer is configured, long before ``fit``."""
    if isinstance(strategy, Strategy):
        return
    if strategy not in STRATEGIES:
        raise TrainError(
            f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}; pass one of these or "
            "a maru.train.Strategy"
        )
    if strategy == "dp_tp" and tp_size is None:
        raise TrainError("strategy='dp_tp' needs tp_size (ranks per tensor-parallel group)")


def resolve_strategy(
    strategy: str | Strategy, env: DistEnv, *, tp_size: int | None = None
) -> Strategy:
    """Turn the trainer's ``strategy`` argument into a :class:`Strategy` for this environment."""
    check_strategy(strategy, tp_size)
    if isinstance(strategy, Strategy):
        return strategy
    if strategy == "dp_tp":
        assert tp_size is not None
        return DPxTP(tp_size)
    if strategy == "tp":
        return TP(tp_size)
    if not env.distributed:
        return Strategy()  # one process: auto, DDP and FSDP all reduce to the plain loop
    if strategy == "single":
        raise TrainError(
            f"strategy='single' but {env.world_size} processes were started; use 'ddp' or 'auto'"
        )
    return FSDP() if strategy == "fsdp" else DDP()


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank, so sharding starts from one model even
    when ranks initialised differently (DDP does this itself)."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def clip_grad_norm(params: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip gradients to a global 2-norm of ``max_norm``; returns the norm before clipping.

    Plain tensors and DTensors on one mesh go through ``torch.nn.utils.clip_grad_norm_``. When
    DTensors live on different meshes (dp × tp with parameters outside the TP plan), per-mesh norms
    are reduced to full tensors first and combined, which the stock function cannot do."""
    import torch
    from torch.distributed.tensor import DTensor

    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return torch.zeros(())
    grads = [p.grad for p in with_grad if p.grad is not None]
    groups: dict[Any, list[torch.Tensor]] = {}
    for g in grads:
        groups.setdefault(g.device_mesh if isinstance(g, DTensor) else None, []).append(g)
    if len(groups) == 1:
        return torch.nn.utils.clip_grad_norm_(with_grad, max_norm)
    norms = []
    for group in groups.values():
        norm = torch.nn.utils.get_total_norm(group, 2.0)
        norms.append(norm.full_tensor() if isinstance(norm, DTensor) else norm)
    total = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]), 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        local = g.to_local() if isinstance(g, DTensor) else g
        local.mul_(coef.to(local.device, local.dtype))
    return total
