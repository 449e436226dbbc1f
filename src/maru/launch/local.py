"""Local backend: a job spec runs under torchrun (``torch.distributed.run``) on this machine, with
fault tolerance on by default.

This module is the side that runs in the user's process (``maru launch --on local``, ``maru jobs``):
it renders the agents' torchrun commands, writes them into a new job folder and starts the detached
supervisor (:mod:`maru.launch.supervisor`), which runs the job and writes how it ended; then it
follows the job (status, logs, cancel) through the job folder's files (:mod:`maru.launch.jobdir`),
so a later command in another process finds the job just as well.

Each simulated node (``nnodes``; for ``MIN:MAX`` the maximum, or the ``nodes=`` option) gets one
torchrun agent with ``--max-restarts``, ``--log-dir JOB_DIR/logs/node<k>`` (per-rank
``stdout.log``/``stderr.log``/``error.json`` per attempt) and ``--tee 3`` (worker output also in
``JOB_DIR/node<k>.log``, prefixed by rank); every worker runs through :mod:`maru.launch.entry`
(error files with rank and ``file:line``), and the c10d rendezvous store listens on
``127.0.0.1:<port>`` (the spec's ``rdzv_port`` when set, else a free port).

Workers get ``MARU_CHECKPOINT_DIR`` (the spec's ``checkpoint_dir``, else
``<jobs root>/_checkpoints/<name>``, so a re-launch of the same job resumes),
``MARU_HANG_TIMEOUT_S`` (the spec's ``hang_timeout_s``: the trainer's hang watchdog) and
``MARU_JOB_DIR``.

Job folder: ``<maru home>/jobs/local/<job_id>/`` (:mod:`maru._home`: ``$MARU_HOME``, else the
project's ``.maru``; layout in :mod:`maru.launch.jobdir`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._home import maru_home
from .._process import free_port, pid_alive
from ..errors import ConfigurationError
from .backend import Backend, JobHandle, JobState, JobStatus, LaunchError
from .jobdir import CLEARED_ENV, HOST, REQUEUE_EXIT_CODE, JobFolder, root_cause, write_json
from .worker import worker_env

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = ["REQUEUE_EXIT_CODE", "LocalBackend", "default_root", "root_cause"]


def default_root() -> Path:
    """Where job folders go by default: ``jobs/local`` in maru's home folder (:mod:`maru._home`);
    ``$MARU_LOCAL_JOBS`` overrides it."""
    return maru_home() / "jobs" / "local"

FIRST_WORKER_PREFIX = "[default0]:"
"""How torchrun's ``--tee`` prefixes the lines of local rank 0 in a node's log."""
SUPERVISOR_MODULE = "maru.launch.supervisor"
"""What ``submit`` runs with ``python -m`` (detached) to run a job."""


class LocalBackend(Backend):
    """Run jobs on this machine under torchrun; see the module docstring.

    ``nodes`` overrides how many agents (simulated nodes) start; ``rdzv_conf`` adds c10d
    rendezvous settings (``last_call_timeout``, ``keep_alive_interval`` …); ``preempt_deadline_s``
    is how long agents wait for workers to checkpoint after SIGTERM before SIGKILL; ``wait`` makes
    :meth:`submit` block until the job ends (default from ``$MARU_LAUNCH_WAIT``)."""

    name = "local"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        nodes: int | None = None,
        python: str | None = None,
        rdzv_conf: Mapping[str, str | int | float] | None = None,
        preempt_deadline_s: float = 30.0,
        cancel_grace_s: float = 40.0,
        wait: bool | None = None,
    ) -> None:
        if nodes is not None and nodes < 1:
            raise ConfigurationError(f"nodes must be at least 1, not {nodes}")
        self.root = Path(root or os.environ.get("MARU_LOCAL_JOBS") or default_root())
        self.nodes = nodes
        self.python = python or sys.executable
        self.rdzv_conf = {str(k): str(v) for k, v in (rdzv_conf or {}).items()}
        self.preempt_deadline_s = preempt_deadline_s
        self.cancel_grace_s = cancel_grace_s
        self.wait = (
            wait if wait is not None else os.environ.get("MARU_LAUNCH_WAIT", "") in ("1", "true")
        )
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------------------ rendering
    def node_count(self, spec: JobSpec) -> int:
        """How many agents start: ``nodes=`` when given (within MIN:MAX), else ``MAX``."""
        count = self.nodes if self.nodes is not None else spec.max_nodes
        if not spec.min_nodes <= count <= spec.max_nodes:
            raise ConfigurationError(
                f"nodes={count} is outside the job's nnodes {spec.nnodes}: "
                f"pick a count from {spec.min_nodes} to {spec.max_nodes}"
            )
        return count

    def checkpoint_dir(self, spec: JobSpec) -> Path:
        """Where the workers checkpoint (and resume from)."""
        if spec.checkpoint_dir:
            return Path(spec.checkpoint_dir).expanduser().resolve()
        return (self.root / "_checkpoints" / spec.name).resolve()

    def agent_command(self, spec: JobSpec, node: int, port: int, job_dir: Path) -> list[str]:
        """The torchrun command line of simulated node ``node``."""
        entry = spec.entrypoint.argv()
        base = spec.torchrun_command(self.python, rdzv_endpoint=f"{HOST}:{port}")
        base = base[: len(base) - len(entry)]
        conf = {"is_host": "false", **({"last_call_timeout": "3"} if spec.elastic else {})}
        conf.update(self.rdzv_conf)
        return [
            *base,
            "--rdzv-conf",
            ",".join(f"{k}={v}" for k, v in conf.items()),
            "--log-dir",
            str(JobFolder(job_dir).node_logs_dir(node)),
            "--tee",
            "3",
            "--shutdown-timeout",
            f"{self.preempt_deadline_s:g}",
            "-m",
            "maru.launch.entry",
            *entry,
        ]

    def worker_env(self, spec: JobSpec, job_id: str, job_dir: Path) -> dict[str, str]:
        """What the agents (and so the workers) get on top of this process's environment."""
        folder = JobFolder(job_dir.resolve())
        env = worker_env(spec, str(self.checkpoint_dir(spec)), str(folder.hangs_dir))
        env.update(MARU_JOB_ID=job_id, MARU_JOB_DIR=str(folder.path))
        env.update(spec.env)
        return env

    def render(self, spec: JobSpec) -> str:
        port = spec.rdzv_port
        job_dir = self.root / f"{spec.name}-<id>"
        count = self.node_count(spec)
        lines = [
            f"# {spec.name}: {count} simulated node(s) x {spec.nproc_per_node} worker(s), "
            f"c10d rendezvous store on {HOST}:{port} hosted by the maru supervisor"
            + ("" if "rdzv_port" in spec.model_fields_set else " (submit picks a free port)"),
            f"# checkpoints: {self.checkpoint_dir(spec)}",
        ]
        env = self.worker_env(spec, f"{spec.name}-<id>", job_dir)
        lines.append("# environment: " + " ".join(f"{k}={v}" for k, v in env.items()))
        for node in range(count):
            lines.append(shlex.join(self.agent_command(spec, node, port, job_dir)))
        return "\n".join(lines) + "\n"

    # ----------------------------------------------------------------------------- submitting
    def submit(self, spec: JobSpec, *, wait: bool | None = None) -> JobHandle:
        """Start the job's supervisor in the background; with ``wait`` block until it ends
        (printing the root cause of a failure to stderr)."""
        job_id = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder = self._create_folder(job_id)
        job = self._job_record(spec, job_id, folder.path)
        write_json(folder.job_file, job)
        supervisor = self._start_supervisor(job_id, folder, job["cwd"])
        handle = JobHandle(
            backend=self.name,
            job_id=job_id,
            name=spec.name,
            spec_path=job["spec_path"],
            submitted_at=job["submitted_at"],
            extra={"job_dir": str(folder.path), "pid": str(supervisor.pid),
                   "port": str(job["port"])},
        )
        if self.wait if wait is None else wait:
            status = self.wait_for(job_id)
            if status.state != "succeeded":
                _report(job_id, status)
        return handle

    def _create_folder(self, job_id: str) -> JobFolder:
        job_dir = self.root / job_id
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise LaunchError(f"cannot create the job folder {job_dir}: {exc}") from None
        return JobFolder(job_dir.resolve())

    def _job_record(self, spec: JobSpec, job_id: str, job_dir: Path) -> dict[str, Any]:
        """``job.json``: everything the supervisor needs to run the job, and what ``maru jobs``
        shows about it later."""
        port = spec.rdzv_port if "rdzv_port" in spec.model_fields_set else free_port()
        count = self.node_count(spec)
        cwd = Path(spec.workdir).expanduser().resolve() if spec.workdir else Path.cwd()
        return {
            "job_id": job_id,
            "name": spec.name,
            "nnodes": spec.nnodes,
            "nodes": count,
            "nproc_per_node": spec.nproc_per_node,
            "port": port,
            "cwd": str(cwd),
            "env": self.worker_env(spec, job_id, job_dir),
            "commands": [self.agent_command(spec, k, port, job_dir) for k in range(count)],
            "checkpoint_dir": str(self.checkpoint_dir(spec)),
            "spec": spec.model_dump(mode="json"),
            "spec_path": str(spec.source) if spec.source else None,
            "submitted_at": time.time(),
        }

    def _start_supervisor(
        self, job_id: str, folder: JobFolder, cwd: str
    ) -> subprocess.Popen[bytes]:
        """``python -m maru.launch.supervisor JOB_DIR`` in its own session, so the job outlives
        this process and a Ctrl-C in this terminal reaches it only through :meth:`cancel`."""
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        with open(folder.supervisor_log, "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", SUPERVISOR_MODULE, str(folder.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        self._children[job_id] = proc
        write_json(folder.pids_file, {"supervisor": proc.pid, "agents": []})
        return proc

    def run(self, spec: JobSpec) -> int:
        """Foreground: submit, wait, print a failure's root cause; the job's exit code (0 done,
        143 preempted: run again to resume, else failed). Ctrl-C cancels the job."""
        handle = self.submit(spec, wait=False)
        try:
            status = self.wait_for(handle.job_id)
        except KeyboardInterrupt:
            self.cancel(handle.job_id)
            status = self.wait_for(handle.job_id)
        result = self.result(handle.job_id) or {}
        code = int(result.get("exit_code", 1))
        if code != 0:
            _report(handle.job_id, status)
        return code

    def wait_for(self, job_id: str, timeout: float | None = None, poll_s: float = 0.2) -> JobStatus:
        """Block until the job has finished (or ``timeout`` seconds passed); its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status.finished or (deadline is not None and time.monotonic() > deadline):
                return status
            child = self._children.get(job_id)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=poll_s)
            else:
                time.sleep(poll_s)

    # ------------------------------------------------------------------------------ following
    def job_dir(self, job_id: str) -> Path:
        return self._folder(job_id).path

    def _folder(self, job_id: str) -> JobFolder:
        folder = JobFolder(self.root / job_id)
        if not folder.job_file.exists():
            raise LaunchError(
                f"no local job {job_id!r} under {self.root}: maru jobs ls --on local lists them"
            )
        return folder

    def result(self, job_id: str) -> dict[str, Any] | None:
        """What the supervisor wrote at the end (``None`` while the job runs)."""
        return self._folder(job_id).result()

    def pids(self, job_id: str) -> dict[str, Any]:
        """``{"supervisor": pid, "agents": [pid per node]}``."""
        return self._folder(job_id).pids()

    def status(self, job_id: str) -> JobStatus:
        folder = self._folder(job_id)
        result = folder.result()
        if result is not None:
            return self._status(job_id, folder, result["state"], str(result.get("detail", "")))
        if self._supervisor_running(job_id, folder):
            state: JobState = "running" if folder.pids().get("agents") else "pending"
            return self._status(job_id, folder, state)
        if folder.result_file.exists():  # written between the two reads
            return self.status(job_id)
        pid = folder.pids().get("supervisor")
        return self._status(job_id, folder, "failed", f"the supervisor (pid {pid}) died without a "
                            f"result; see {folder.supervisor_log}")

    def _status(
        self, job_id: str, folder: JobFolder, state: JobState, detail: str = ""
    ) -> JobStatus:
        return JobStatus(job_id, state, detail, folder.restarts(), name=folder.job().get("name"),
                         backend=self.name)

    def _supervisor_running(self, job_id: str, folder: JobFolder) -> bool:
        """Asked of our own child when this process started it, else of the recorded pid."""
        child = self._children.get(job_id)
        if child is not None:
            return child.poll() is None
        pid = folder.pids().get("supervisor")
        return pid is not None and pid_alive(int(pid))

    def logs(self, job_id: str, *, follow: bool = False, rank: int | None = None) -> Iterator[str]:
        """All agents' output (each worker line prefixed by torchrun with its rank), or with
        ``rank`` the newest attempt's per-rank stdout+stderr of that global rank (local rank
        ``rank % nproc_per_node`` on simulated node ``rank // nproc_per_node``)."""
        folder = self._folder(job_id)
        for _, line in self._read_lines(job_id, _log_files(job_id, folder, rank), follow=follow):
            yield line

    def progress(self, job_id: str) -> Iterator[str]:
        """What ``maru launch --on local`` shows while it waits, as it is written, until the job
        ends: the supervisor's lines (agents started, restarts, how it ended) and the output of
        the first worker (node 0, local rank 0) without torchrun's ``[default0]:`` prefix."""
        folder = self._folder(job_id)
        first_node = folder.node_log(0)
        for path, line in self._read_lines(job_id, [folder.supervisor_log, first_node], follow=True):
            if path != first_node:
                yield line
            elif line.startswith(FIRST_WORKER_PREFIX):
                yield line[len(FIRST_WORKER_PREFIX):]

    def _read_lines(self, job_id: str, files: list[Path], *, follow: bool) -> Iterator[tuple[Path, str]]:
        """``(file, line)`` for every line of ``files``; with ``follow`` new lines as they are
        written, until the job has finished."""
        offsets = dict.fromkeys(files, 0)
        while True:
            for path in files:
                for line in _new_lines(path, offsets, whole_lines=follow):
                    yield path, line
            if not follow:
                return
            if self.status(job_id).finished:
                follow = False  # one last read after the end, partial lines included
                continue
            time.sleep(0.5)

    def kill_node(self, job_id: str, node: int, sig: int = signal.SIGKILL) -> None:
        """Simulate losing node ``node``: ``sig`` to its agent and all its workers."""
        agents = self.pids(job_id).get("agents") or []
        if not 0 <= node < len(agents):
            raise LaunchError(f"job {job_id} has no running node {node} (agents: {agents})")
        _kill_tree(int(agents[node]), sig)

    # ----------------------------------------------------------------------------- cancelling
    def cancel(self, job_id: str) -> None:
        """SIGTERM the supervisor (it forwards to the agents; workers checkpoint); SIGKILL the
        whole job after ``cancel_grace_s``."""
        folder = self._folder(job_id)
        if folder.result() is not None:
            return
        folder.cancelled_marker.write_text(str(time.time()))
        supervisor = folder.pids().get("supervisor")
        if supervisor and pid_alive(int(supervisor)):
            os.kill(int(supervisor), signal.SIGTERM)
        self._wait_for_supervisor(job_id, folder, supervisor)
        if folder.result() is None:
            if supervisor:
                _kill_tree(int(supervisor), signal.SIGKILL)
            folder.write_result("cancelled", -9, [], "cancelled (killed after the grace period)")

    def _wait_for_supervisor(self, job_id: str, folder: JobFolder, supervisor: int | None) -> None:
        """Until the supervisor wrote its result or exited, at most ``cancel_grace_s``."""
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline and folder.result() is None:
            child = self._children.get(job_id)
            if child is not None and child.poll() is not None:
                return
            if child is None and supervisor and not pid_alive(int(supervisor)):
                return
            time.sleep(0.2)


def _report(job_id: str, status: JobStatus) -> None:
    """A job that did not succeed, on stderr: its state and the root cause the supervisor found."""
    print(f"{job_id}: {status.state}\n{status.detail}", file=sys.stderr)


def _log_files(job_id: str, folder: JobFolder, rank: int | None) -> list[Path]:
    """What ``logs`` reads: the supervisor's and every agent's log, or one rank's newest logs."""
    job = folder.job()
    if rank is None:
        nodes = range(int(job.get("nodes", 1)))
        return [folder.supervisor_log, *(folder.node_log(k) for k in nodes)]
    per_node = job.get("nproc_per_node")
    per = per_node if isinstance(per_node, int) else 1
    files = folder.rank_logs(rank // per, rank % per)
    if not files:
        raise LaunchError(f"job {job_id} has no log of rank {rank} (yet) in {folder.logs_dir}")
    return files


def _new_lines(path: Path, offsets: dict[Path, int], *, whole_lines: bool) -> list[str]:
    """The lines added to ``path`` since ``offsets[path]`` (advanced past them); with
    ``whole_lines`` a line still being written waits for the next call."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(offsets[path])
            text = fh.read()
            offsets[path] = fh.tell()
    except OSError:
        return []
    if text and whole_lines and not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        offsets[path] -= len(text[cut:].encode())
        text = text[:cut]
    return text.splitlines()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc; torchrun starts workers in new sessions,
    so a process group does not reach them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int, sig: int) -> None:
    for target in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)
