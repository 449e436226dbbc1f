"""A local job's folder, the one contract between the two processes of the local backend: the
backend in the user's process (:mod:`maru.launch.local`) writes the job and reads its progress,
the detached supervisor (:mod:`maru.launch.supervisor`) runs it and writes how it ended. Naming
every file here keeps the two sides on one layout:

``<maru home>/jobs/local/<job_id>/`` (:mod:`maru._home`)
    ``job.json`` (what to run: agent commands, environment, port), ``pids.json`` (supervisor and
    agent pids), ``supervisor.log``, ``node<k>.log`` (agent ``k``'s output, worker lines prefixed
    by rank), ``node<k>.error.json`` (the agent's copy of its first worker error), ``logs/node<k>/``
    (torchrun's per-attempt, per-rank logs), ``hangs/`` (watchdog dumps), ``preempted/`` (one
    marker per rank that checkpointed after SIGTERM), ``cancelled`` (marker) and ``result.json``.

:func:`root_cause` reads a finished job's folder for its first failure.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .entry import RootCause, parse_child_failed, read_error_file

__all__ = ["CLEARED_ENV", "HOST", "REQUEUE_EXIT_CODE", "JobFolder", "read_json", "root_cause",
           "write_json"]

HOST = "127.0.0.1"
"""Where the rendezvous store listens: every simulated node is on this machine."""
REQUEUE_EXIT_CODE = 143
"""The job's exit code after preemption: it checkpointed; run it again and it resumes."""
CLEARED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
               "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")
"""Variables of an enclosing torchrun that must not leak into the job's own agents."""


def read_json(path: Path) -> Any:
    """The file's JSON, or ``None`` while it is missing or half-written by the other process."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file and a rename, so the other process never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class JobFolder:
    """The files of one local job (see the module docstring for the layout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.job_file = path / "job.json"
        self.pids_file = path / "pids.json"
        self.result_file = path / "result.json"
        self.supervisor_log = path / "supervisor.log"
        self.cancelled_marker = path / "cancelled"
        self.preempted_dir = path / "preempted"
        self.hangs_dir = path / "hangs"
        self.logs_dir = path / "logs"

    def node_log(self, node: int) -> Path:
        return self.path / f"node{node}.log"

    def node_error_file(self, node: int) -> Path:
        return self.path / f"node{node}.error.json"

    def node_logs_dir(self, node: int) -> Path:
        return self.logs_dir / f"node{node}"

    # ---------------------------------------------------------------------------------- reading
    def job(self) -> dict[str, Any]:
        data = read_json(self.job_file)
        return data if isinstance(data, dict) else {}

    def pids(self) -> dict[str, Any]:
        """``{"supervisor": pid, "agents": [pid per node]}``."""
        data = read_json(self.pids_file)
        return data if isinstance(data, dict) else {"supervisor": None, "agents": []}

    def result(self) -> dict[str, Any] | None:
        """What the supervisor wrote at the end (``None`` while the job runs)."""
        data = read_json(self.result_file)
        return data if isinstance(data, dict) else None

    def preempted_ranks(self) -> list[str]:
        """``rank<r>`` of every worker that checkpointed after SIGTERM (marked by
        :mod:`maru.launch.entry`)."""
        return sorted(p.stem for p in self.preempted_dir.glob("rank*.json"))

    def restarts(self) -> int:
        """How many times torchrun restarted the busiest node's workers."""
        counts = [len({p.name for p in _attempts(n)}) - 1 for n in self.logs_dir.glob("node*")]
        return max([0, *counts])

    def rank_logs(self, node: int, local_rank: int) -> list[Path]:
        """The newest attempt's ``stdout.log`` and ``stderr.log`` of one worker (those that
        exist)."""
        attempts = _attempts(self.node_logs_dir(node))
        if not attempts:
            return []
        folder = attempts[-1] / str(local_rank)
        return [p for p in (folder / "stdout.log", folder / "stderr.log") if p.exists()]

    # ---------------------------------------------------------------------------------- writing
    def write_result(self, state: str, exit_code: int, exit_codes: list[int], detail: str,
                     **extra: Any) -> None:
        """``result.json``: how the job ended; its presence is what marks the job finished."""
        write_json(self.result_file, {
            "state": state, "exit_code": exit_code, "exit_codes": exit_codes, "detail": detail,
            "finished_at": time.time(), **extra,
        })


def _attempts(node_logs: Path) -> list[Path]:
    """``attempt_<n>`` folders of one node's torchrun log dir, oldest first."""
    found = [p for p in node_logs.glob("*/attempt_*") if p.is_dir()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def root_cause(job_dir: str | os.PathLike[str]) -> RootCause | None:
    """The first failure of a job's last attempt: from the agents' copied error files, else
    their ``ChildFailedError`` reports, else the newest worker error file."""
    folder = Path(job_dir)
    causes = [c for c in map(_node_cause, sorted(folder.glob("node*.log"))) if c is not None]
    if causes:
        return min(causes, key=lambda c: c.timestamp or float("inf"))
    return _newest_worker_error(folder)


def _node_cause(log: Path) -> RootCause | None:
    """One agent's first worker failure: its copied error file, with the rank (or the whole cause)
    taken from the agent's ``ChildFailedError`` report when the file lacks it."""
    copied = log.with_name(f"{log.stem}.error.json")
    cause = read_error_file(copied) if copied.exists() else None
    if cause is not None and cause.rank:
        return cause
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    parsed = parse_child_failed(text)
    if parsed is None or (cause is not None and parsed.exc_type != cause.exc_type):
        return cause
    return parsed if cause is None else RootCause(**{**cause.__dict__, "rank": parsed.rank})


def _newest_worker_error(folder: Path) -> RootCause | None:
    """The newest error file any worker of any attempt wrote (agents left no summary)."""
    found = [read_error_file(p) for p in (folder / "logs").glob("node*/*/attempt_*/*/error.json")]
    causes = [c for c in found if c is not None]
    return max(causes, key=lambda c: c.timestamp) if causes else None
