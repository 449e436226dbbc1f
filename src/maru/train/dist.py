"""The distributed environment: who this process is (rank, world, node) as torchrun, Slurm or a
Kubeflow PyTorchJob describe it, the process group's start and clean end, and SIGTERM handling.

Preemption contract (used by ``maru.launch`` for requeue): :func:`install_sigterm_handler` makes
SIGTERM set a flag instead of killing the process. The trainer asks :meth:`SigtermFlag.agreed`
after every step (in a distributed run an all-reduce of the flag, started one step and read the
next, so every rank stops at the same step, one step after the signal), saves a checkpoint
when a checkpoint directory is configured, destroys the process group and raises
:class:`Preempted`, a ``SystemExit`` with code :data:`PREEMPTED_EXIT_CODE` (143 = 128 + SIGTERM).
Uncaught, the process exits with 143 and no traceback; a restart with the same command resumes
from that checkpoint.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._process import free_port as free_port  # moved to _process; kept importable here
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from types import FrameType

PREEMPTED_EXIT_CODE = 143
"""Exit code of a run stopped by SIGTERM after saving its checkpoint (128 + signal 15)."""


class Preempted(SystemExit):
    """SIGTERM arrived: the trainer saved a checkpoint (if configured), tore down the process group
    and stops. A ``SystemExit`` so an uncaught one exits quietly with code 143."""

    def __init__(self, step: int, checkpoint: str | None = None) -> None:
        super().__init__(PREEMPTED_EXIT_CODE)
        self.step = step
        self.checkpoint = checkpoint

    def __str__(self) -> str:
        saved = f", checkpoint {self.checkpoint}" if self.checkpoint else ", no checkpoint configured"
        return f"preempted by SIGTERM at step {self.step}{saved}"


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job. ``source`` says which launcher described it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    source: str = "single"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """Read the environment. torchrun's variables win over Slurm's; a Kubeflow PyTorchJob sets
        torchrun-style ``RANK``/``WORLD_SIZE`` itself (or ``PET_*`` for torchrun inside the pod)."""
        env = os.environ if environ is None else environ
        if "RANK" in env and "WORLD_SIZE" in env:
            return _from_torchrun(env)
        if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
            return _from_slurm(env)
        if "PET_NNODES" in env or "PET_MASTER_ADDR" in env:
            return _from_pet(env)
        return cls()

    def export(self) -> dict[str, str]:
        """The torchrun-style variables ``init_process_group(init_method="env://")`` reads."""
        return {
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None


def _from_torchrun(env: Mapping[str, str]) -> DistEnv:
    world = _int(env, "WORLD_SIZE", 1)
    rank = _int(env, "RANK", 0)
    source = "kubeflow" if "PET_NNODES" in env or "PET_NPROC_PER_NODE" in env else "torchrun"
    if "LOCAL_RANK" not in env:
        source = "kubeflow"  # the operator sets RANK/WORLD_SIZE itself: one process per pod
    local_world = _int(env, "LOCAL_WORLD_SIZE", world if "LOCAL_RANK" in env else 1)
    node = _int(env, "GROUP_RANK", rank // max(local_world, 1))
    return DistEnv(
        rank=rank,
        world_size=world,
        local_rank=_int(env, "LOCAL_RANK", 0),
        local_world_size=local_world,
        node_rank=node,
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=_int(env, "MASTER_PORT", 29500),
        source=source,
    )


def _from_slurm(env: Mapping[str, str]) -> DistEnv:
    world = _int(env, "SLURM_NTASKS", 1)
    per_node = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or ""
    local_world = _tasks_per_node(per_node, _int(env, "SLURM_NODEID", 0)) or world
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
    hosts = parse_hostlist(nodelist) if nodelist else []
    return DistEnv(
        rank=_int(env, "SLURM_PROCID", 0),
        world_size=world,
        local_rank=_int(env, "SLURM_LOCALID", 0),
        local_world_size=local_world,
        node_rank=_int(env, "SLURM_NODEID", 0),
        master_addr=env.get("MASTER_ADDR") or (hosts[0] if hosts else "127.0.0.1"),
        master_port=_int(env, "MASTER_PORT", _slurm_port(env)),
        source="slurm",
    )


def _from_pet(env: Mapping[str, str]) -> DistEnv:
    """Inside a PyTorchJob pod before torchrun has started its workers: describes the pod (node)."""
    nnodes = env.get("PET_NNODES", "1").split(":")[-1]
    nproc = env.get("PET_NPROC_PER_NODE", "1")
    per_node = int(nproc) if nproc.isdigit() else 1
    node = _int(env, "PET_NODE_RANK", 0)
    return DistEnv(
        rank=node * per_node,
        world_size=int(nnodes) * per_node,
        local_rank=0,
        local_world_size=per_node,
        node_rank=node,
        master_addr=env.get("PET_MASTER_ADDR", env.get("MASTER_ADDR", "127.0.0.1")),
        master_port=_int(env, "PET_MASTER_PORT", _int(env, "MASTER_PORT", 29500)),
        source="kubeflow",
    )


def _slurm_port(env: Mapping[str, str]) -> int:
    """A port every task of the job computes alike (the job id spreads jobs over 10000 ports)."""
    job = env.get("SLURM_JOB_ID", "")
    return 20000 + int(job[-4:]) if job[-4:].isdigit() else 29500


def _tasks_per_node(spec: str, node: int) -> int:
    """``SLURM_TASKS_PER_NODE`` like ``"4(x2),3"`` → tasks on ``node``; ``0`` when unknown."""
    counts: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not match:
            return 0
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    if not counts:
        return 0
    return counts[node] if node < len(counts) else counts[-1]


def parse_hostlist(hostlist: str) -> list[str]:
    """Expand a Slurm host list: ``"node[01-03,07],gpu5"`` → ``node01 node02 node03 node07 gpu5``.

    Zero padding follows the range's first bound; several bracket groups multiply out."""
    hosts: list[str] = []
    for item in _split_top(hostlist):
        hosts.extend(_expand(item))
    return hosts


def _split_top(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ConfigurationError(f"host list {text!r} has an unmatched ']'")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ConfigurationError(f"host list {text!r} has an unclosed '['")
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _expand(item: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", item)
    if match is None:
        return [item]
    prefix, rest = item[: match.start()], item[match.end() :]
    out: list[str] = []
    for part in match.group(1).split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ConfigurationError(f"host list range {part!r} in {item!r} is not a number range")
        width = len(lo)
        for n in range(int(lo), int(hi if sep else lo) + 1):
            for tail in _expand(rest):
                out.append(f"{prefix}{n:0{width}d}{tail}")
    return out


def init_process_group(
    env: DistEnv | None = None,
    *,
    backend: str | None = None,
    timeout: timedelta = timedelta(minutes=10),
) -> bool:
    """Start the default process group for ``env`` (read from the environment when omitted).

    Idempotent: returns ``False`` when the group already exists or the run is a single process,
    ``True`` when this call created it (so the caller owns its teardown). NCCL when CUDA is there,
    bound to the device ``LOCAL_RANK`` names; gloo otherwise."""
    import torch
    import torch.distributed as dist

    env = env or DistEnv.from_environ()
    if not env.distributed or not dist.is_available() or dist.is_initialized():
        return False
    for key, value in env.export().items():
        os.environ.setdefault(key, value)
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    kwargs: dict[str, Any] = {}
    if backend == "nccl":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
        kwargs["device_id"] = device
    store = attempt_store(timeout=timeout)
    if store is not None:
        kwargs["store"] = store
    dist.init_process_group(
        backend=backend, rank=env.rank, world_size=env.world_size, timeout=timeout, **kwargs
    )
    _collect_before_finalization()
    return True


SHARED_STORE_FLAG = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
"""Set to ``1`` in torchrun's own environment (it is read by the agent, before any worker starts)
to give every attempt a fresh store; ``maru launch`` sets it on every backend."""


def attempt_store(environ: Mapping[str, str] | None = None, timeout: timedelta = timedelta(minutes=10)) -> Any:
    """The agent's store seen through a key space of this attempt, or ``None`` (use ``env://``).

    torchrun's agent keeps one TCP store for all attempts and hands it to the workers
    (``TORCHELASTIC_USE_AGENT_STORE=True``), so a restarted group finds the previous attempt's
    keys: a rank that reads a slow peer's old address connects to a dead process (gloo's
    ``connectFullMesh`` fails, or ``init_process_group`` hangs). Under one agent (one node) its
    restart count is the same for every worker and new for every attempt, so it names the key
    space. Across several agents the counts can differ (an agent that saw a peer fail does not
    count a restart); there only :data:`SHARED_STORE_FLAG` in the agent's environment helps, and
    a warning says so once."""
    env = os.environ if environ is None else environ
    if env.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "TORCHELASTIC_RESTART_COUNT" not in env:
        return None
    agents = _int(env, "GROUP_WORLD_SIZE", 1)
    if agents > 1:
        if _int(env, "TORCHELASTIC_MAX_RESTARTS", 0) > 0 and _int(env, "RANK", 0) == 0:
            import warnings

            warnings.warn(
                f"torchrun shares one store across restarts and {agents} nodes: a restart may "
                f"fail in init_process_group. Start torchrun with {SHARED_STORE_FLAG}=1 in its "
                "environment (maru launch does) for a fresh store per attempt",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    from torch.distributed import PrefixStore, TCPStore

    store = TCPStore(
        env["MASTER_ADDR"], _int(env, "MASTER_PORT", 29500), _int(env, "WORLD_SIZE", 1),
        is_master=False, timeout=timeout,
    )
    run = env.get("TORCHELASTIC_RUN_ID", "")
    # A group started again in the same attempt (fit, then test) gets fresh keys too: every rank
    # starts the same groups in the same order, so the count agrees.
    group = next(_GROUPS_STARTED)
    return PrefixStore(f"maru/{run}/attempt{env['TORCHELASTIC_RESTART_COUNT']}/group{group}/", store)


_GROUPS_STARTED = itertools.count()


_collecting_at_exit = False


def _collect_before_finalization() -> None:
    """Run one garbage collection at exit, while the interpreter is whole (once per process).

    Tensors that collective work objects keep alive, freed only by the collection that
    interpreter finalization runs, can abort the process after a run that finished
    ("terminate called without an active exception"; the mechanism is described in
    pytorch/pytorch#179291, whose fix was withdrawn). The trainer already collects before it
    destroys its group; this catches what a script still held when ``fit`` returned."""
    global _collecting_at_exit
    if not _collecting_at_exit:
        import atexit
        import gc

        atexit.register(gc.collect)
        _collecting_at_exit = True


def destroy_process_group() -> None:
    """Tear the default group down if it exists. Local (no barrier), so a failing rank never waits
    for its peers; safe to call twice."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # Objects in reference cycles (DDP reducers, DCP planners, DTensors) can hold gloo work;
        # freed only at interpreter teardown they abort the process ("terminate called without
        # an active exception"). Collect them while the group is still alive.
        gc.collect()
        dist.destroy_process_group()


class SigtermFlag:
    """Turns SIGTERM into a flag the training loop reads; restores the old handler on ``restore``.

    :meth:`agreed` is what the loop asks after every step: whether all ranks stop now."""

    def __init__(self) -> None:
        self.set = False
        self._previous: Any = None
        self._installed = False
        self._vote: tuple[Any, Any] | None = None  # the all-reduce in flight and its tensor
        self._group: Any = None

    def agreed(self) -> bool:
        """Whether every rank stops at this step. In one process: the flag. In a group: the sum of
        the flags all ranks sent one step earlier (an all-reduce started then without waiting,
        read now; it had a whole step to finish), so a SIGTERM that reached any rank stops all of
        them at the same step, one step after it arrived. The vote goes over gloo on the CPU (a
        gloo group beside NCCL), so reading it never waits on the GPU."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.set
        stop = False
        if self._vote is not None:
            work, votes = self._vote
            work.wait()
            stop = float(votes[0]) > 0
        self._vote = None if stop else self._send_vote()
        return stop

    def _send_vote(self) -> tuple[Any, Any]:
        import torch
        import torch.distributed as dist

        if self._group is None:
            default = dist.get_backend()
            self._group = dist.group.WORLD if default == "gloo" else dist.new_group(backend="gloo")
        votes = torch.tensor([1.0 if self.set else 0.0])
        # Straight to the process group: dist.all_reduce's Python checks and logging wrapper cost
        # more than the one-float reduction itself, and this runs every step.
        return self._group.allreduce([votes]), votes

    def install(self) -> SigtermFlag:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self  # signals are only delivered to the main thread
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.set = True

    def restore(self) -> None:
        self._vote = None  # every rank sent it, so it completes without anyone waiting
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


def install_sigterm_handler() -> SigtermFlag:
    """Install a SIGTERM handler that only sets a flag (see the module docstring for the contract)."""
    return SigtermFlag().install()
