"""What every backend gives its workers, so a job behaves alike under torchrun, Slurm and
Kubernetes: the node command (torchrun under :mod:`maru.launch.node`, each worker under
:mod:`maru.launch.entry` for error files), the environment (hang watchdog, checkpoint folder, a
fresh torchrun store per attempt) and what exit codes mean.

Exit codes, the same under every backend (a worker's, a node's, and the job's):

====  ===========================================================================================
code  meaning
====  ===========================================================================================
0     finished
1     failed: an exception in the training code (the root cause names rank and ``file:line``);
      a deterministic error, so Slurm does not requeue it and a rerun fails the same way
124   hung: the watchdog saw no step for ``hang_timeout_s``, dumped every thread's stack and
      killed the worker (torchrun restarts it while ``max_restarts`` lasts)
137   killed by SIGKILL (out of memory, or SIGTERM's lead ran out before the checkpoint)
143   preempted: SIGTERM reached the run, it checkpointed and stopped; run it again (Slurm
      requeues it, Kubernetes restarts the pods) and it resumes
====  ===========================================================================================

torchrun's agent itself exits 1 whatever its workers did; :mod:`maru.launch.node` turns that
back into 143 when the node was preempted, so the table holds for what the scheduler sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import shutdown_timeout

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = [
    "FAILED",
    "HUNG",
    "KILLED",
    "PREEMPTED",
    "SHARED_STORE_FLAG",
    "SUCCEEDED",
    "node_command",
    "worker_env",
]

SUCCEEDED = 0
FAILED = 1
HUNG = 124
KILLED = 137
PREEMPTED = 143

ENTRY_MODULE = "maru.launch.entry"
NODE_MODULE = "maru.launch.node"
SHARED_STORE_FLAG = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
"""Read by torchrun's agent (never by workers): ``1`` gives each attempt a fresh store, so a
restart never reads the last attempt's addresses (see :func:`maru.train.dist.attempt_store`)."""


def node_command(
    spec: JobSpec,
    python: str = "python",
    *,
    lead_s: int,
    node_rank: int | str | None = None,
    rdzv_endpoint: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """One node's command: torchrun (under the exit-code wrapper :mod:`maru.launch.node`) with the
    spec's rendezvous, ``extra`` torchrun options, a ``--shutdown-timeout`` inside the preemption
    lead ``lead_s``, and each worker under :mod:`maru.launch.entry`."""
    entry = spec.entrypoint.argv()
    torchrun = spec.torchrun_args(node_rank, rdzv_endpoint)[: -len(entry)]
    return [
        python, "-m", NODE_MODULE, *torchrun, *extra,
        "--shutdown-timeout", str(shutdown_timeout(lead_s)),
        "-m", ENTRY_MODULE, *entry,
    ]


def worker_env(
    spec: JobSpec, checkpoint_dir: str | None, hang_dir: str | None = None
) -> dict[str, str]:
    """The environment of a node's torchrun: the spec's ``env`` over maru's defaults."""
    env = {
        "MARU_JOB_NAME": spec.name,
        "PYTHONUNBUFFERED": "1",
        "MARU_HANG_TIMEOUT_S": f"{spec.hang_timeout_s:g}",
        SHARED_STORE_FLAG: "1",
    }
    if checkpoint_dir:
        env["MARU_CHECKPOINT_DIR"] = checkpoint_dir
    if hang_dir:
        env["MARU_HANG_DUMP_DIR"] = hang_dir
    env.update(spec.env)
    return env
