"""Local backend: a job spec runs under torchrun (``torch.distributed.run``) on this machine, with
fault tolerance on by default.

``submit`` starts a small supervisor process (``python -m maru.launch.local JOB_DIR``, detached in
its own session) that

* hosts the c10d rendezvous store on ``127.0.0.1:<port>`` (the spec's ``rdzv_port`` when set,
  else a free port), so losing any simulated node never takes the rendezvous down with it;
* starts one torchrun agent per simulated node (``nnodes``; for ``MIN:MAX`` the maximum, or the
  ``nodes=`` option), each in its own process group, with ``--max-restarts``, ``--log-dir
  JOB_DIR/logs/node<k>`` (torchrun's per-rank ``stdout.log``/``stderr.log``/``error.json`` per
  attempt) and ``--tee 3`` (worker output also in ``JOB_DIR/node<k>.log``, prefixed by rank);
* runs every worker through :mod:`maru.launch.entry` (error files with rank and ``file:line``);
* forwards SIGTERM (preemption, :meth:`LocalBackend.cancel`) to the agents, which forward it to
  the workers: the trainer checkpoints and exits 143;
* waits, and writes ``result.json``: exit codes, the job's exit code (0 done, 143 preempted —
  requeue and it resumes, else failed) and, for a failure, the root cause (rank, exception,
  message, ``file:line``) from the error files or torchrun's ``ChildFailedError`` report.

Workers get ``MARU_CHECKPOINT_DIR`` (the spec's ``checkpoint_dir``, else
``<jobs root>/_checkpoints/<name>``, so a re-launch of the same job resumes), ``MARU_HANG_TIMEOUT_S``
(the spec's ``hang_timeout_s``: the trainer's hang watchdog) and ``MARU_JOB_DIR``.

Job folder: ``.maru/jobs/local/<job_id>/`` (``job.json``, ``pids.json``, ``supervisor.log``,
``node<k>.log``, ``logs/``, ``hangs/``, ``preempted/``, ``result.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._process import free_port, pid_alive
from ..errors import ConfigurationError
from .backend import Backend, JobHandle, JobState, JobStatus, LaunchError
from .entry import RootCause, format_root_cause, parse_child_failed, read_error_file

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = ["DEFAULT_ROOT", "REQUEUE_EXIT_CODE", "LocalBackend", "root_cause"]

DEFAULT_ROOT = Path(".maru") / "jobs" / "local"
"""Where job folders go (``$MARU_LOCAL_JOBS`` overrides it)."""
REQUEUE_EXIT_CODE = 143
"""The job's exit code after preemption: it checkpointed; run it again and it resumes."""
_HOST = "127.0.0.1"
_CLEARED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


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
        self.root = Path(root or os.environ.get("MARU_LOCAL_JOBS") or DEFAULT_ROOT)
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
        base = spec.torchrun_command(self.python, rdzv_endpoint=f"{_HOST}:{port}")
        base = base[: len(base) - len(entry)]
        conf = {"is_host": "false", **({"last_call_timeout": "3"} if spec.elastic else {})}
        conf.update(self.rdzv_conf)
        return [
            *base,
            "--rdzv-conf",
            ",".join(f"{k}={v}" for k, v in conf.items()),
            "--log-dir",
            str(job_dir / "logs" / f"node{node}"),
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
        env = {
            "MARU_JOB_NAME": spec.name,
            "MARU_JOB_ID": job_id,
            "MARU_JOB_DIR": str(job_dir.resolve()),
            "MARU_CHECKPOINT_DIR": str(self.checkpoint_dir(spec)),
            "MARU_HANG_TIMEOUT_S": f"{spec.hang_timeout_s:g}",
            "MARU_HANG_DUMP_DIR": str(job_dir.resolve() / "hangs"),
            "PYTHONUNBUFFERED": "1",
            # a fresh worker store each attempt: the store torchrun shares by default outlives
            # restarts, and a slow rank's stale address from the last attempt fails the next one
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
        }
        env.update(spec.env)
        return env

    def render(self, spec: JobSpec) -> str:
        port = spec.rdzv_port
        job_dir = self.root / f"{spec.name}-<id>"
        count = self.node_count(spec)
        lines = [
            f"# {spec.name}: {count} simulated node(s) x {spec.nproc_per_node} worker(s), "
            f"c10d rendezvous store on {_HOST}:{port} hosted by the maru supervisor"
            + ("" if "rdzv_port" in spec.model_fields_set else " (submit picks a free port)"),
            f"# checkpoints: {self.checkpoint_dir(spec)}",
        ]
        env = self.worker_env(spec, f"{spec.name}-<id>", job_dir)
        lines.append("# environment: " + " ".join(f"{k}={v}" for k, v in env.items()))
        for node in range(count):
            lines.append(_shell(self.agent_command(spec, node, port, job_dir)))
        return "\n".join(lines) + "\n"

    # ----------------------------------------------------------------------------- submitting
    def submit(self, spec: JobSpec, *, wait: bool | None = None) -> JobHandle:
        """Start the job's supervisor in the background; with ``wait`` block until it ends
        (printing the root cause of a failure to stderr)."""
        job_id = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = self.root / job_id
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise LaunchError(f"cannot create the job folder {job_dir}: {exc}") from None
        job_dir = job_dir.resolve()
        explicit_port = "rdzv_port" in spec.model_fields_set
        port = spec.rdzv_port if explicit_port else free_port()
        count = self.node_count(spec)
        cwd = Path(spec.workdir).expanduser().resolve() if spec.workdir else Path.cwd()
        job = {
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
        _write_json(job_dir / "job.json", job)
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        with open(job_dir / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "maru.launch.local", str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(cwd),
                env=env,
                start_new_session=True,
            )
        self._children[job_id] = proc
        _write_json(job_dir / "pids.json", {"supervisor": proc.pid, "agents": []})
        handle = JobHandle(
            backend=self.name,
            job_id=job_id,
            name=spec.name,
            spec_path=str(spec.source) if spec.source else None,
            submitted_at=float(job["submitted_at"]),  # type: ignore[arg-type]
            extra={"job_dir": str(job_dir), "pid": str(proc.pid), "port": str(port)},
        )
        if self.wait if wait is None else wait:
            status = self.wait_for(job_id)
            if status.state != "succeeded":
                print(f"{job_id}: {status.state}\n{status.detail}", file=sys.stderr)
        return handle

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
            print(f"{handle.job_id}: {status.state}\n{status.detail}", file=sys.stderr)
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
        folder = self.root / job_id
        if not (folder / "job.json").exists():
            raise LaunchError(
                f"no local job {job_id!r} under {self.root}: maru jobs ls --on local lists them"
            )
        return folder

    def result(self, job_id: str) -> dict[str, Any] | None:
        """What the supervisor wrote at the end (``None`` while the job runs)."""
        data = _read_json(self.job_dir(job_id) / "result.json")
        return data if isinstance(data, dict) else None

    def pids(self, job_id: str) -> dict[str, Any]:
        """``{"supervisor": pid, "agents": [pid per node]}``."""
        data = _read_json(self.job_dir(job_id) / "pids.json")
        return data if isinstance(data, dict) else {"supervisor": None, "agents": []}

    def status(self, job_id: str) -> JobStatus:
        folder = self.job_dir(job_id)
        job = _read_json(folder / "job.json") or {}
        restarts = _restarts(folder)
        result = self.result(job_id)
        if result is not None:
            state: JobState = result["state"]
            return JobStatus(job_id, state, str(result.get("detail", "")), restarts,
                             name=job.get("name"), backend=self.name)
        child = self._children.get(job_id)
        pid = self.pids(job_id).get("supervisor")
        running = child.poll() is None if child is not None else pid is not None and pid_alive(int(pid))
        if running:
            agents = self.pids(job_id).get("agents") or []
            state = "running" if agents else "pending"
            return JobStatus(job_id, state, "", restarts, name=job.get("name"), backend=self.name)
        if (folder / "result.json").exists():  # written between the two reads
            return self.status(job_id)
        return JobStatus(job_id, "failed", f"the supervisor (pid {pid}) died without a result; "
                         f"see {folder / 'supervisor.log'}", restarts, name=job.get("name"),
                         backend=self.name)

    def logs(self, job_id: str, *, follow: bool = False, rank: int | None = None) -> Iterator[str]:
        """All agents' output (each worker line prefixed by torchrun with its rank), or with
        ``rank`` the newest attempt's per-rank stdout+stderr of that global rank (local rank
        ``rank % nproc_per_node`` on simulated node ``rank // nproc_per_node``)."""
        folder = self.job_dir(job_id)
        job = _read_json(folder / "job.json") or {}
        if rank is None:
            files = [folder / "supervisor.log"] + [folder / f"node{k}.log" for k in range(int(job.get("nodes", 1)))]
        else:
            per_node = job.get("nproc_per_node")
            per = per_node if isinstance(per_node, int) else 1
            files = _rank_logs(folder / "logs" / f"node{rank // per}", rank % per)
            if not files:
                raise LaunchError(f"job {job_id} has no log of rank {rank} (yet) in {folder / 'logs'}")
        offsets = dict.fromkeys(files, 0)
        while True:
            for path in files:
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        fh.seek(offsets[path])
                        text = fh.read()
                        offsets[path] = fh.tell()
                except OSError:
                    continue
                if text and follow and not text.endswith("\n"):
                    cut = text.rfind("\n") + 1
                    offsets[path] -= len(text[cut:].encode())
                    text = text[:cut]
                yield from text.splitlines()
            if not follow or self.status(job_id).finished:
                if follow:
                    follow = False
                    continue  # one last read after the end
                return
            time.sleep(0.5)

    def kill_node(self, job_id: str, node: int, sig: int = signal.SIGKILL) -> None:
        """Simulate losing node ``node``: ``sig`` to its agent and all its workers."""
        agents = self.pids(job_id).get("agents") or []
        if not 0 <= node < len(agents):
            raise LaunchError(f"job {job_id} has no running node {node} (agents: {agents})")
        _kill_tree(int(agents[node]), sig)

    def cancel(self, job_id: str) -> None:
        """SIGTERM the supervisor (it forwards to the agents; workers checkpoint); SIGKILL the
        whole job after ``cancel_grace_s``."""
        folder = self.job_dir(job_id)
        if self.result(job_id) is not None:
            return
        (folder / "cancelled").write_text(str(time.time()))
        pids = self.pids(job_id)
        supervisor = pids.get("supervisor")
        if supervisor and pid_alive(int(supervisor)):
            os.kill(int(supervisor), signal.SIGTERM)
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline and self.result(job_id) is None:
            child = self._children.get(job_id)
            if child is not None and child.poll() is not None:
                break
            if child is None and supervisor and not pid_alive(int(supervisor)):
                break
            time.sleep(0.2)
        if self.result(job_id) is None:
            if supervisor:
                _kill_tree(int(supervisor), signal.SIGKILL)
            _write_json(folder / "result.json", {
                "state": "cancelled", "exit_code": -9, "detail": "cancelled (killed after the grace period)",
                "exit_codes": [], "finished_at": time.time(),
            })


def _shell(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


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


def _attempts(node_logs: Path) -> list[Path]:
    """``attempt_<n>`` folders of one node's torchrun log dir, oldest first."""
    found = [p for p in node_logs.glob("*/attempt_*") if p.is_dir()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def _restarts(job_dir: Path) -> int:
    counts = [len({p.name for p in _attempts(n)}) - 1 for n in (job_dir / "logs").glob("node*")]
    return max([0, *counts])


def _rank_logs(node_logs: Path, local_rank: int) -> list[Path]:
    attempts = _attempts(node_logs)
    if not attempts:
        return []
    folder = attempts[-1] / str(local_rank)
    return [p for p in (folder / "stdout.log", folder / "stderr.log") if p.exists()]


def root_cause(job_dir: str | os.PathLike[str]) -> RootCause | None:
    """The first failure of a job's last attempt: from the agents' copied error files, else
    their ``ChildFailedError`` reports, else the newest worker error file."""
    folder = Path(job_dir)
    causes: list[RootCause] = []
    for log in sorted(folder.glob("node*.log")):
        node = log.stem
        copied = folder / f"{node}.error.json"
        cause = read_error_file(copied) if copied.exists() else None
        if cause is None or not cause.rank:
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            parsed = parse_child_failed(text)
            if parsed is not None and (cause is None or parsed.exc_type == cause.exc_type):
                cause = parsed if cause is None else RootCause(**{**cause.__dict__, "rank": parsed.rank})
        if cause is not None:
            causes.append(cause)
    if not causes:
        files = [read_error_file(p) for p in (folder / "logs").glob("node*/*/attempt_*/*/error.json")]
        causes = [c for c in files if c is not None]
        causes.sort(key=lambda c: -c.timestamp)
        return causes[0] if causes else None
    return min(causes, key=lambda c: c.timestamp or float("inf"))


# ------------------------------------------------------------------------------- supervisor
class _Supervisor:
    """Runs in its own process: hosts the rendezvous store, starts and watches the agents."""

    def __init__(self, job_dir: Path) -> None:
        self.dir = job_dir
        self.job: dict[str, Any] = _read_json(job_dir / "job.json") or {}
        self.agents: list[subprocess.Popen[bytes]] = []
        self.terminated = False

    def log(self, message: str) -> None:
        print(f"[maru supervisor {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.terminated = True
        for agent in self.agents:
            if agent.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    agent.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)
        store = self._host_store()
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        env.update(self.job.get("env", {}))
        pids = _read_json(self.dir / "pids.json") or {}
        for node, command in enumerate(self.job["commands"]):
            node_env = dict(env, TORCHELASTIC_ERROR_FILE=str(self.dir / f"node{node}.error.json"))
            with open(self.dir / f"node{node}.log", "ab") as out:
                self.agents.append(subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.job.get("cwd"), env=node_env, start_new_session=True,
                ))
            if self.terminated:
                self.agents[-1].send_signal(signal.SIGTERM)
        pids.update(supervisor=os.getpid(), agents=[a.pid for a in self.agents])
        _write_json(self.dir / "pids.json", pids)
        self.log(f"started {len(self.agents)} agent(s): pids {pids['agents']}, "
                 f"rendezvous {_HOST}:{self.job['port']}")
        codes = [agent.wait() for agent in self.agents]
        del store
        return self._finish(codes)

    def _host_store(self) -> Any:
        from datetime import timedelta

        from torch.distributed import TCPStore

        try:
            return TCPStore(_HOST, int(self.job["port"]), is_master=True, multi_tenant=True,
                            wait_for_workers=False, timeout=timedelta(seconds=60))
        except (RuntimeError, ValueError) as exc:
            self._write_result("failed", 1, [], f"could not host the rendezvous store on "
                               f"{_HOST}:{self.job['port']} ({exc}); free that port or set "
                               "another rdzv_port in the job spec")
            raise SystemExit(1) from None

    def _finish(self, codes: list[int]) -> int:
        preempted = self.terminated or any((self.dir / "preempted").glob("rank*.json"))
        cancelled = (self.dir / "cancelled").exists()
        succeeded = any(c == 0 for c in codes) and all(c <= 0 for c in codes)
        if succeeded:
            lost = sum(1 for c in codes if c != 0)
            detail = "all workers finished" + (f" ({lost} node(s) lost on the way)" if lost else "")
            return self._write_result("succeeded", 0, codes, detail)
        if cancelled:
            return self._write_result("cancelled", REQUEUE_EXIT_CODE, codes,
                                      "cancelled: workers were asked to checkpoint and stop")
        if preempted:
            checkpointed = sorted(p.stem for p in (self.dir / "preempted").glob("rank*.json"))
            saved = f"checkpointed ({', '.join(checkpointed)})" if checkpointed else "no worker reported a checkpoint"
            return self._write_result(
                "failed", REQUEUE_EXIT_CODE, codes,
                f"preempted (SIGTERM): {saved}; exit {REQUEUE_EXIT_CODE} asks for requeue — run the "
                f"job again and it resumes from {self.job.get('checkpoint_dir')}",
            )
        cause = root_cause(self.dir)
        detail = f"agents exited with {codes}"
        if cause is not None:
            detail = format_root_cause(cause) + f"\n  ({detail})"
        return self._write_result("failed", next((c for c in codes if c > 0), 1), codes, detail,
                                  cause)

    def _write_result(self, state: str, code: int, codes: list[int], detail: str,
                      cause: RootCause | None = None) -> int:
        data: dict[str, Any] = {"state": state, "exit_code": code, "exit_codes": codes,
                                "detail": detail, "finished_at": time.time(),
                                "restarts": _restarts(self.dir)}
        if cause is not None:
            data["root_cause"] = {k: v for k, v in cause.__dict__.items() if k != "traceback"}
        _write_json(self.dir / "result.json", data)
        self.log(f"job {state} (exit {code}): {detail}")
        return code


def main(argv: list[str] | None = None) -> None:
    """``python -m maru.launch.local JOB_DIR``: the supervisor the backend starts."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "job.json").exists():
        print("usage: python -m maru.launch.local JOB_DIR (a folder holding job.json)", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(_Supervisor(Path(args[0])).run())


if __name__ == "__main__":
    main()
