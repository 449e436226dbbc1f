"""Slurm: a job spec becomes an sbatch script that runs one ``srun`` task per node, each task a
``torchrun`` with c10d rendezvous on the first host of ``SLURM_JOB_NODELIST``.

Preemption and restarts, all inside the script:

* ``--signal=B:TERM@<signal_lead_s>`` makes Slurm send SIGTERM to the batch shell that long
  before the time limit (``scancel --signal=TERM --batch`` does the same by hand, and is how an
  operator or a test preempts a job). The shell's trap forwards it to the ``srun`` step, torchrun
  hands it to the workers, and the trainer saves a checkpoint and exits 143
  (:data:`maru.train.dist.PREEMPTED_EXIT_CODE`).
* When the step ends preempted (exit 143, or the trap fired) and the job has been restarted
  fewer than ``max_restarts`` times (``SLURM_RESTART_COUNT``), the script runs ``scontrol
  requeue`` on its own job (``--requeue``): same job id, same checkpoint directory, and the trainer
  resumes from the newest checkpoint. A step that failed any other way is not requeued: torchrun
  has already restarted its workers in place (``--max-restarts``), and an error in the training
  code would fail every run the same way. A failed node is Slurm's own to requeue (``--requeue``).
  A job Slurm is ending (cancelled, or killed at its time limit: state COMPLETING) is not
  requeued. Exit codes mean what :mod:`maru.launch.worker` says; each node runs under
  :mod:`maru.launch.node` (143 for a preempted node, not torchrun's 1) and each worker under
  :mod:`maru.launch.entry` (error files), with the hang watchdog's dumps in ``<log dir>/hangs``. The srun step is signalled with ``scancel --signal=TERM <job>.<step>``: srun itself
  takes SIGTERM as "abort the step" and would kill the workers before they save.
* Output of every run is appended (``--open-mode=append``) to ``<log dir>/<job id>.log``; srun
  prefixes each line with the node number (``--label``), which ``logs(rank=...)`` filters on.

Status comes from ``scontrol show job`` (the controller keeps finished jobs ``MinJobAge``
seconds), then from ``sacct`` where the cluster keeps accounting. Every command runs through
``subprocess``; a missing command or a refusal raises :class:`~maru.errors.LaunchError`.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .backend import Backend, JobHandle, JobState, JobStatus, LaunchError
from .worker import node_command, worker_env

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = ["MARU_COMMENT", "SlurmBackend", "parse_job_record", "render_sbatch", "slurm_state"]

MARU_COMMENT = "maru"
"""The ``--comment`` on every job maru submits, so ``list()`` can find them in ``squeue``."""

_INSTALL_HINT = "is Slurm installed? run scripts/slurm.sh (or use a host with the Slurm clients)"

_STATES: dict[str, JobState] = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RESV_DEL_HOLD": "pending",
    "SUSPENDED": "pending",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "RESIZING": "running",
    "STOPPED": "running",
    "COMPLETED": "succeeded",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "PREEMPTED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "OUT_OF_MEMORY": "failed",
    "SPECIAL_EXIT": "failed",
    "REVOKED": "failed",
}

_BYTES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def slurm_state(text: str) -> JobState:
    """Slurm's job state (``RUNNING``, ``CANCELLED by 0``, ``COMPLETED``) as maru's."""
    word = text.strip().split(" ")[0].split("+")[0].upper()
    return _STATES.get(word, "unknown")


def _mebibytes(quantity: str) -> int:
    """A memory quantity (``8Gi``, ``512Mi``, ``2G``) in MiB, rounded up, for ``--mem``."""
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", quantity)
    if found is None or found.group(2) not in _BYTES:
        raise ConfigurationError(
            f"memory {quantity!r} cannot be given to Slurm: use a size such as 8Gi, 512Mi or 2G"
        )
    return max(1, math.ceil(float(found.group(1)) * _BYTES[found.group(2)] / 2**20))


def _sbatch_options(spec: JobSpec, log_file: Path) -> list[str]:
    opts = spec.slurm
    nodes = str(spec.min_nodes) if not spec.elastic else f"{spec.min_nodes}-{spec.max_nodes}"
    lines = [f"--job-name={spec.name}", f"--nodes={nodes}", "--ntasks-per-node=1"]
    if spec.resources.cpus is not None:
        lines.append(f"--cpus-per-task={math.ceil(spec.resources.cpus)}")
    elif isinstance(spec.nproc_per_node, int):
        lines.append(f"--cpus-per-task={spec.nproc_per_node}")
    if spec.resources.memory is not None:
        lines.append(f"--mem={_mebibytes(spec.resources.memory)}M")
    if spec.resources.gpus:
        lines.append(f"--gres=gpu:{spec.resources.gpus}")
    if opts is not None:
        if opts.time:
            lines.append(f"--time={opts.time}")
        for flag, value in (
            ("partition", opts.partition),
            ("account", opts.account),
            ("qos", opts.qos),
        ):
            if value:
                lines.append(f"--{flag}={value}")
    lines += [
        f"--signal=B:TERM@{spec.slurm_lead_s}",
        "--requeue",
        "--open-mode=append",
        f"--output={log_file}",
        f"--comment={MARU_COMMENT}",
    ]
    if spec.workdir:
        lines.append(f"--chdir={spec.workdir}")
    if opts is not None:
        lines += opts.extra_args
    return lines


_BODY = """\
set -u
{exports}
restarts=${{SLURM_RESTART_COUNT:-0}}
max_restarts={max_restarts}
# This run's folder: workers that checkpoint after SIGTERM leave a marker there, so every node's
# maru.launch.node exits 143 (preempted) rather than torchrun's 1.
export MARU_JOB_DIR={log_dir}/"$SLURM_JOB_ID.run$restarts"
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# A port per job (base + job id mod 1000), so jobs sharing a node do not collide.
MASTER_PORT=$(( {port} + SLURM_JOB_ID % 1000 ))
(( MASTER_PORT > 65535 )) && MASTER_PORT={port}
export MASTER_ADDR MASTER_PORT
echo "maru: job $SLURM_JOB_ID run $((restarts + 1)) on $SLURM_JOB_NUM_NODES node(s)" \\
    "($SLURM_JOB_NODELIST), rendezvous $MASTER_ADDR:$MASTER_PORT, $(date -u +%FT%TZ)"

# Preemption: Slurm signals this shell (--signal=B:TERM, or scancel --signal=TERM --batch).
# Forward SIGTERM to the training step so the trainer checkpoints and exits 143, then wait.
preempted=0
step_pid=""
forward_term() {{
    preempted=1
    echo "maru: SIGTERM at $(date -u +%FT%TZ): asking the training step to checkpoint and stop"
    # Signal the step's tasks (torchrun and its workers) through Slurm: srun itself would treat
    # SIGTERM as "abort the step" and kill them before they can save.
    steps=$(squeue -h -s -j "$SLURM_JOB_ID" -o %i 2>/dev/null | grep -E '^[0-9_]+[.][0-9]+$')
    if [ -n "$steps" ]; then
        scancel --signal=TERM $steps
    elif [ -n "$step_pid" ]; then
        kill -TERM "$step_pid" 2>/dev/null
    fi
}}
trap forward_term TERM

srun --kill-on-bad-exit=1 --label --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 \\
    {torchrun} &
step_pid=$!
while :; do
    wait "$step_pid"
    rc=$?
    if (( rc > 128 )) && kill -0 "$step_pid" 2>/dev/null; then continue; fi  # a trap woke us
    break
done
echo "maru: training step exited with code $rc"
(( rc == 0 )) && exit 0
# Requeue only a preempted run (143, or the SIGTERM above): an error in the training code fails
# the same way on every run, and torchrun has already restarted it in place. A failed node is
# Slurm's to requeue (--requeue), without this script.
if (( preempted == 0 && rc != 143 )); then
    echo "maru: failed with exit code $rc: not requeueing (an error in the training code fails" \
        "again; the root cause is above)"
    exit "$rc"
fi
reason="preempted"
# Requeue only a job Slurm still runs: one being cancelled or killed at its time limit shows
# COMPLETING (a preempted one, signalled ahead of the limit, is still RUNNING).
state=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | grep -o "JobState=[A-Z_]*")
if [ "$state" != "JobState=RUNNING" ]; then
    echo "maru: the job is ending (${{state:-JobState unknown}}): not requeueing"
    exit "$rc"
fi
if (( restarts < max_restarts )); then
    echo "maru: $reason: requeueing (restart $((restarts + 1)) of $max_restarts)," \\
        "resuming from the newest checkpoint"
    scontrol requeue "$SLURM_JOB_ID" && exit 0
    echo "maru: scontrol requeue failed"
else
    echo "maru: $reason and no restarts left ($restarts of $max_restarts used)"
fi
exit 143
"""


def render_sbatch(
    spec: JobSpec, log_file: str | os.PathLike[str], python: str = "python"
) -> str:
    """The sbatch script for ``spec``: ``#SBATCH`` lines, environment, rendezvous host, the srun
    step under a SIGTERM-forwarding trap, and self-requeue up to ``max_restarts`` times."""
    header = ["#!/bin/bash"]
    header += [f"#SBATCH {line}" for line in _sbatch_options(spec, Path(log_file))]
    source = f" from {spec.source}" if spec.source else ""
    header.append(f"# Rendered by maru{source}: job {spec.name}")
    log_dir = Path(log_file).parent
    env = worker_env(spec, spec.checkpoint_dir, str(log_dir / "hangs"))
    exports = "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())
    command = node_command(spec, python, lead_s=spec.slurm_lead_s, rdzv_endpoint="@ENDPOINT@")
    torchrun = " ".join(
        '"$MASTER_ADDR:$MASTER_PORT"' if arg == "@ENDPOINT@" else shlex.quote(arg)
        for arg in command
    )
    body = _BODY.format(
        exports=exports,
        max_restarts=spec.max_restarts,
        log_dir=shlex.quote(str(log_dir)),
        port=spec.rdzv_port,
        torchrun=torchrun,
    )
    return "\n".join(header) + "\n\n" + body


def parse_job_record(text: str) -> dict[str, str]:
    """``scontrol show job -o`` output (``Key=Value`` words) as a dict; values holding spaces
    (a path, a reason) are rejoined."""
    record: dict[str, str] = {}
    key: str | None = None
    for word in text.strip().split(" "):
        found = re.match(r"^([A-Za-z][A-Za-z0-9_/:]*)=(.*)$", word)
        if found:
            key = found.group(1)
            record[key] = found.group(2)
        elif key is not None and word:
            record[key] += " " + word
    return record


class SlurmBackend(Backend):
    """Submit, follow and cancel jobs with ``sbatch``, ``scontrol``, ``squeue``, ``sacct`` and
    ``scancel``. Job ids are Slurm's numeric ids.

    ``python`` is the interpreter the job runs torchrun with (default this one, which suits a
    shared filesystem; ``$MARU_SLURM_PYTHON`` overrides it). ``log_root`` holds the output,
    ``<log_root>/<job name>/<job id>.log`` (default ``<workdir or cwd>/.maru/slurm``)."""

    name = "slurm"

    def __init__(
        self,
        *,
        python: str | None = None,
        log_root: str | os.PathLike[str] | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.python = python or os.environ.get("MARU_SLURM_PYTHON") or sys.executable
        self.log_root = Path(log_root) if log_root is not None else None
        self.poll_s = poll_s

    # ------------------------------------------------------------------ helpers
    def log_dir(self, spec: JobSpec) -> Path:
        """Where the job's output goes (absolute: the compute nodes open it)."""
        root = self.log_root or Path(spec.workdir or os.getcwd()) / ".maru" / "slurm"
        return (root / spec.name).absolute()

    def _run(
        self, args: list[str], doing: str, *, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if shutil.which(args[0]) is None:
            raise LaunchError(f"Slurm {doing} needs the {args[0]!r} command, not found: {_INSTALL_HINT}")
        try:
            done = subprocess.run(
                args, input=stdin, capture_output=True, text=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            raise LaunchError(
                f"Slurm {doing}: {shlex.join(args)} did not answer in 60 s; is slurmctld running "
                "(scontrol ping)?"
            ) from None
        except OSError as exc:
            raise LaunchError(f"Slurm {doing}: {args[0]} could not run ({exc}); {_INSTALL_HINT}") from None
        if check and done.returncode != 0:
            said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            raise LaunchError(f"Slurm {doing} failed: {shlex.join(args)}: {said}")
        return done

    def _record(self, job_id: str) -> dict[str, str] | None:
        """The controller's record of the job, ``None`` once it has forgotten it."""
        done = self._run(["scontrol", "show", "job", "-o", job_id], "status", check=False)
        if done.returncode != 0 or "JobId=" not in done.stdout:
            said = (done.stderr or done.stdout).strip()
            if "Invalid job id" in said or not said:
                return None
            raise LaunchError(f"Slurm status of job {job_id} failed: scontrol said: {said}")
        return parse_job_record(done.stdout.splitlines()[0])

    def _accounting(self, job_id: str) -> JobStatus | None:
        """The job from ``sacct`` (``None`` when accounting is off or has no such job)."""
        if shutil.which("sacct") is None:
            return None
        done = self._run(
            ["sacct", "-X", "-n", "-P", "-D", "-j", job_id, "-o", "JobID,JobName,State,ExitCode"],
            "accounting",
            check=False,
        )
        rows = [line.split("|") for line in done.stdout.splitlines() if line.count("|") == 3]
        rows = [row for row in rows if row[0] == job_id]
        if done.returncode != 0 or not rows:
            return None
        _, name, state, exit_code = rows[-1]
        return JobStatus(
            job_id=job_id,
            state=slurm_state(state),
            detail=f"{state} (exit code {exit_code}, from sacct)",
            restarts=len(rows) - 1,
            name=name,
            backend=self.name,
        )

    @staticmethod
    def _check_id(job_id: str) -> str:
        text = job_id.strip()
        if not re.fullmatch(r"[0-9]+(_[0-9]+)?", text):
            raise ConfigurationError(f"{job_id!r} is not a Slurm job id (a number such as 1234)")
        return text

    # ------------------------------------------------------------------ Backend
    def render(self, spec: JobSpec) -> str:
        return render_sbatch(spec, self.log_dir(spec) / "%j.log", python=self.python)

    def submit(self, spec: JobSpec) -> JobHandle:
        folder = self.log_dir(spec)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LaunchError(f"cannot create the log folder {folder}: {exc}") from None
        script = self.render(spec)
        (folder / "job.sbatch").write_text(script, encoding="utf-8")
        done = self._run(["sbatch", "--parsable"], f"submit of {spec.name}", stdin=script)
        job_id = done.stdout.strip().splitlines()[-1].split(";")[0] if done.stdout.strip() else ""
        if not job_id.isdigit():
            raise LaunchError(f"sbatch did not print a job id for {spec.name}: {done.stdout!r}")
        return JobHandle(
            backend=self.name,
            job_id=job_id,
            name=spec.name,
            spec_path=str(spec.source) if spec.source else None,
            extra={"log": str(folder / f"{job_id}.log"), "script": str(folder / "job.sbatch")},
        )

    def status(self, job_id: str) -> JobStatus:
        """From the controller (``scontrol show job``), else from ``sacct``; ``unknown`` when
        neither knows the job any more."""
        job_id = self._check_id(job_id)
        record = self._record(job_id)
        if record is None:
            found = self._accounting(job_id)
            if found is not None:
                return found
            return JobStatus(
                job_id=job_id,
                state="unknown",
                detail="Slurm does not know this job (finished longer than MinJobAge ago with "
                "accounting off, or a wrong id)",
                backend=self.name,
            )
        raw = record.get("JobState", "")
        reason = record.get("Reason", "None")
        detail = raw + (f" ({reason})" if reason not in ("None", "") else "")
        if slurm_state(raw) in ("failed", "succeeded", "cancelled"):
            detail += f", exit code {record.get('ExitCode', '?')}"
        restarts = record.get("Restarts", "0")
        return JobStatus(
            job_id=job_id,
            state=slurm_state(raw),
            detail=detail,
            restarts=int(restarts) if restarts.isdigit() else 0,
            name=record.get("JobName"),
            backend=self.name,
        )

    def log_file(self, job_id: str) -> Path:
        """The job's output file: ``StdOut`` of the controller's record, else the one recorded
        at submission in the job registry."""
        job_id = self._check_id(job_id)
        record = self._record(job_id)
        if record is not None and record.get("StdOut", "(null)") != "(null)":
            return Path(record["StdOut"].replace("%j", job_id))
        from .registry import JobRegistry

        for handle in JobRegistry().find(job_id, backend=self.name):
            if handle.extra.get("log"):
                return Path(handle.extra["log"])
        raise LaunchError(
            f"no log file known for Slurm job {job_id}: the controller has forgotten it and the "
            "job registry has no record (look under .maru/slurm/<job name>/)"
        )

    def logs(self, job_id: str, *, follow: bool = False, rank: int | None = None) -> Iterator[str]:
        """Lines of the output file, every run of the job (requeues append). ``rank`` keeps the
        lines node ``rank``'s srun task wrote, without their ``N:`` label."""
        path = self.log_file(job_id)
        label = re.compile(r"^\s*(\d+): ?(.*)$")
        offset = 0
        pending = ""
        while True:
            finished = not follow or self.status(job_id).finished
            chunk = ""
            if path.exists():
                with path.open("r", encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset = handle.tell()
            elif not follow:
                raise LaunchError(
                    f"Slurm job {job_id} has no output yet at {path} (still pending?): try again"
                )
            *lines, pending = (pending + chunk).split("\n")
            if finished and pending:
                lines, pending = [*lines, pending], ""
            for line in lines:
                if rank is None:
                    yield line
                    continue
                found = label.match(line)
                if found and int(found.group(1)) == rank:
                    yield found.group(2)
            if finished:
                return
            time.sleep(self.poll_s)

    def cancel(self, job_id: str) -> None:
        job_id = self._check_id(job_id)
        self._run(["scancel", job_id], f"cancel of job {job_id}")

    def list(self, registry: Any = None) -> list[JobStatus]:
        """The registry's Slurm jobs, plus jobs maru submitted that ``squeue`` still shows."""
        found = super().list(registry)
        known = {status.job_id for status in found}
        done = self._run(["squeue", "-h", "--me", "-o", "%i|%j|%T|%r|%k"], "listing jobs")
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 5 or parts[4] != MARU_COMMENT or parts[0] in known:
                continue
            job_id, name, state, reason, _ = parts
            found.append(
                JobStatus(
                    job_id=job_id,
                    state=slurm_state(state),
                    detail=state + (f" ({reason})" if reason not in ("None", "") else ""),
                    name=name,
                    backend=self.name,
                )
            )
        return found
