"""One node of a job on Slurm or Kubernetes: ``python -m maru.launch.node TORCHRUN_ARGS...`` runs
torchrun's agent as a child, forwards SIGTERM and SIGINT to it, and exits with a code that means
what :mod:`maru.launch.worker` says: the agent exits 1 whatever ended its workers, so a node
whose workers checkpointed after SIGTERM (they leave markers in ``$MARU_JOB_DIR/preempted``,
written by :mod:`maru.launch.entry`) or that was itself signalled exits 143, which tells Slurm's
script to requeue and reads as "preempted" in a pod's status.

``MARU_JOB_DIR`` defaults to a fresh folder of this node when the scheduler gives none.

A signal is passed on once, and not at all inside a Slurm step: Slurm signals every process of
the step itself, and a second SIGTERM would cut short the agent's wait for its workers'
checkpoints (its handler raises again inside its own shutdown). In a pod only this process, the
container's first, gets the kubelet's SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .worker import PREEMPTED, SUCCEEDED

__all__ = ["main", "node_exit_code"]

USAGE = "usage: python -m maru.launch.node TORCHRUN_ARGS... (what follows torch.distributed.run)"


def node_exit_code(agent_code: int, signalled: bool, preempted_ranks: int) -> int:
    """The node's exit code from the agent's, whether the node got SIGTERM, and how many of its
    workers checkpointed after one."""
    if agent_code == SUCCEEDED:
        return SUCCEEDED
    if signalled or preempted_ranks:
        return PREEMPTED
    return agent_code if agent_code > 0 else 128 - agent_code  # -9 (killed) -> 137


def _preempted_ranks(job_dir: str) -> int:
    return len(list((Path(job_dir) / "preempted").glob("rank*.json")))


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        raise SystemExit(0 if args else 2)
    job_dir = os.environ.get("MARU_JOB_DIR") or tempfile.mkdtemp(prefix="maru-node-")
    env = dict(os.environ, MARU_JOB_DIR=job_dir)
    agent = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *args], env=env)
    signalled = False
    forwarded = "SLURM_STEP_ID" in os.environ  # Slurm signals the agent itself

    def forward(signum: int, frame: Any) -> None:
        nonlocal signalled, forwarded
        signalled = signalled or signum == signal.SIGTERM
        if not forwarded and agent.poll() is None:
            forwarded = True
            agent.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = agent.wait()
    raise SystemExit(node_exit_code(code, signalled, _preempted_ranks(job_dir)))


if __name__ == "__main__":
    main()
