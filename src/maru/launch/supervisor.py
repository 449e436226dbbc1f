"""The local job's supervisor: ``python -m maru.launch.supervisor JOB_DIR``, started detached (in
its own session) by :meth:`maru.launch.local.LocalBackend.submit`, so the job outlives the command
that submitted it. It

* hosts the c10d rendezvous store on ``127.0.0.1:<port>``, so losing any simulated node never
  takes the rendezvous down with it;
* starts the torchrun agents that ``job.json`` lists, one per simulated node, each in its own
  session, writing ``node<k>.log`` and recording their pids in ``pids.json``;
* forwards SIGTERM and SIGINT (preemption, ``maru jobs cancel``) to the agents, which forward
  them to the workers: the trainer checkpoints and exits 143;
* waits for the agents and writes ``result.json``: the exit codes, the job's exit code (0 done,
  143 preempted or cancelled: run again and it resumes, else failed) and, for a failure, the root
  cause (rank, exception, message, ``file:line``).

It reads and writes only the job folder (:mod:`maru.launch.jobdir`); the backend follows the job
through the same files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .entry import RootCause, format_root_cause
from .jobdir import CLEARED_ENV, HOST, REQUEUE_EXIT_CODE, JobFolder, root_cause, write_json
from .rendezvous import host_store

__all__ = ["Supervisor", "main"]

USAGE = "usage: python -m maru.launch.supervisor JOB_DIR (a folder holding job.json)"


class Supervisor:
    """Runs one job from its folder: rendezvous store, agents, signals, result."""

    def __init__(self, job_dir: Path) -> None:
        self.folder = JobFolder(job_dir)
        self.job = self.folder.job()
        self.agents: list[subprocess.Popen[bytes]] = []
        self.terminated = False

    def run(self) -> int:
        """The job from start to ``result.json``; the job's exit code."""
        self._forward_stop_signals()
        store = self._host_store()
        self._start_agents()
        self._record_pids()
        codes = [agent.wait() for agent in self.agents]
        del store  # the rendezvous lives until the last agent is gone
        return self._finish(codes)

    def log(self, message: str) -> None:
        print(f"[maru supervisor {time.strftime('%H:%M:%S')}] {message}", flush=True)

    # ------------------------------------------------------------------------------- starting
    def _forward_stop_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self.terminated = True
        for agent in self.agents:
            if agent.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    agent.send_signal(signal.SIGTERM)

    def _host_store(self) -> Any:
        """The c10d store every agent rendezvous through (the agents run with ``is_host=false``)."""
        try:
            return host_store(HOST, int(self.job["port"]))
        except (RuntimeError, ValueError) as exc:
            self._write_result("failed", 1, [], f"could not host the rendezvous store on "
                               f"{HOST}:{self.job['port']} ({exc}); free that port or set "
                               "another rdzv_port in the job spec")
            raise SystemExit(1) from None

    def _start_agents(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        env.update(self.job.get("env", {}))
        for node, command in enumerate(self.job["commands"]):
            self.agents.append(self._start_agent(node, command, env))
            if self.terminated:  # a stop signal arrived while agents were starting
                self.agents[-1].send_signal(signal.SIGTERM)

    def _start_agent(
        self, node: int, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        node_env = dict(env, TORCHELASTIC_ERROR_FILE=str(self.folder.node_error_file(node)))
        with open(self.folder.node_log(node), "ab") as out:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.job.get("cwd"), env=node_env, start_new_session=True,
            )

    def _record_pids(self) -> None:
        pids = self.folder.pids()
        pids.update(supervisor=os.getpid(), agents=[a.pid for a in self.agents])
        write_json(self.folder.pids_file, pids)
        self.log(f"started {len(self.agents)} agent(s): pids {pids['agents']}, "
                 f"rendezvous {HOST}:{self.job['port']}")

    # ------------------------------------------------------------------------------ finishing
    def _finish(self, codes: list[int]) -> int:
        """Classify how the agents ended (succeeded, cancelled, preempted, failed) and record it."""
        if any(c == 0 for c in codes) and all(c <= 0 for c in codes):
            return self._succeeded(codes)
        if self.folder.cancelled_marker.exists():
            return self._write_result("cancelled", REQUEUE_EXIT_CODE, codes,
                                      "cancelled: workers were asked to checkpoint and stop")
        if self.terminated or self.folder.preempted_ranks():
            return self._preempted(codes)
        return self._failed(codes)

    def _succeeded(self, codes: list[int]) -> int:
        lost = sum(1 for c in codes if c != 0)
        detail = "all workers finished" + (f" ({lost} node(s) lost on the way)" if lost else "")
        return self._write_result("succeeded", 0, codes, detail)

    def _preempted(self, codes: list[int]) -> int:
        checkpointed = self.folder.preempted_ranks()
        saved = (f"checkpointed ({', '.join(checkpointed)})" if checkpointed
                 else "no worker reported a checkpoint")
        return self._write_result(
            "failed", REQUEUE_EXIT_CODE, codes,
            f"preempted (SIGTERM): {saved}; exit {REQUEUE_EXIT_CODE} asks for requeue — run the "
            f"job again and it resumes from {self.job.get('checkpoint_dir')}",
        )

    def _failed(self, codes: list[int]) -> int:
        cause = root_cause(self.folder.path)
        detail = f"agents exited with {codes}"
        if cause is not None:
            detail = format_root_cause(cause) + f"\n  ({detail})"
        return self._write_result("failed", next((c for c in codes if c > 0), 1), codes, detail,
                                  cause)

    def _write_result(self, state: str, code: int, codes: list[int], detail: str,
                      cause: RootCause | None = None) -> int:
        extra: dict[str, Any] = {"restarts": self.folder.restarts()}
        if cause is not None:
            extra["root_cause"] = {k: v for k, v in cause.__dict__.items() if k != "traceback"}
        self.folder.write_result(state, code, codes, detail, **extra)
        self.log(f"job {state} (exit {code}): {detail}")
        return code


def main(argv: list[str] | None = None) -> None:
    """``python -m maru.launch.supervisor JOB_DIR``: run the job; exit with its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not JobFolder(Path(args[0])).job_file.exists():
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(Supervisor(Path(args[0])).run())


if __name__ == "__main__":
    main()
