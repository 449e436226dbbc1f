"""``maru launch JOB.toml --on local|slurm|kubernetes [--dry-run]`` and ``maru jobs ls | status |
logs | cancel``. Submitted jobs are recorded in the job registry (``jobs.sqlite`` in maru's home folder) so the
``jobs`` commands find them whatever backend ran them."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ConfigurationError, LaunchError
from ._shared import command_group, fail

if TYPE_CHECKING:
    from ..launch.backend import Backend
    from ..launch.registry import JobRegistry

REGISTRY_HELP = "The job registry (default jobs.sqlite in $MARU_HOME, else in the project's .maru folder)."
RegistryDb = Annotated[
    Path | None, typer.Option("--db", envvar="MARU_JOBS_DB", show_envvar=True, help=REGISTRY_HELP)
]
JobArgument = Annotated[str, typer.Argument(help="A job id or name (as maru jobs ls shows).")]
OnOption = Annotated[
    str | None,
    typer.Option("--on", help="The backend holding the job (default: the one that submitted it)."),
]


def _registry(db: Path | None) -> JobRegistry:
    from ..launch.registry import JobRegistry

    return JobRegistry(db)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """A bad spec or configuration exits 2, a scheduler's refusal or failure exits 1; both print
    the message, never a traceback."""
    try:
        yield
    except ConfigurationError as exc:
        fail(str(exc))
    except LaunchError as exc:
        fail(str(exc), code=1)


def _backend(name: str) -> Backend:
    from ..launch.backend import get_backend

    try:
        return get_backend(name)
    except ConfigurationError as exc:
        fail(str(exc))


def launch(
    spec_path: Annotated[Path, typer.Argument(help="The job spec: a .toml, .yaml or .yml file.")],
    on: Annotated[
        str, typer.Option("--on", help="Where to run it: local, slurm or kubernetes.")
    ] = "local",
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print what would be submitted (YAML, sbatch script, command line)."
        ),
    ] = False,
    db: RegistryDb = None,
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--detach",
            help="Block until the job ends and exit with its code (143: preempted, run again to "
            "resume). Default: wait for local runs, detach for schedulers.",
        ),
    ] = None,
) -> None:
    """Run a training job described by a job spec, locally under torchrun, on Slurm or on
    Kubernetes (a Kubeflow Trainer v2 TrainJob, a JobSet, or a legacy PyTorchJob)."""
    from ..launch.spec import load_spec

    try:
        spec = load_spec(spec_path)
    except ConfigurationError as exc:
        fail(str(exc))
    backend = _backend(on)
    with _reported():
        if dry_run:
            text = backend.render(spec)
            typer.echo(text, nl=not text.endswith("\n"))
            return
        handle = backend.submit(spec)
    if handle.spec_path is None:
        handle = dataclasses.replace(handle, spec_path=str(spec_path))
    _registry(db).add(handle)
    typer.echo(f"submitted {handle.name} to {handle.backend}: {handle.job_id}")
    if not (wait if wait is not None else backend.name == "local"):
        typer.echo(f"follow it with:  maru jobs status {handle.job_id}   maru jobs logs {handle.job_id}")
        return
    raise typer.Exit(_wait_and_report(backend, handle.job_id))


def _wait_and_report(backend: Backend, job_id: str, poll_s: float = 2.0) -> int:
    """Block until the job ends, printing its progress where the backend reports it (the local
    one: the supervisor's lines and the first worker's output); print its state (and root cause);
    its exit code: 0 succeeded, 143 preempted (run again to resume), 130 cancelled, else 1 (or the
    local job's own code)."""
    try:
        progress = getattr(backend, "progress", None)
        waiter = getattr(backend, "wait_for", None)
        if progress is not None:
            for line in progress(job_id):
                typer.echo(line)
        if waiter is not None:
            status = waiter(job_id)
        else:
            status = backend.status(job_id)
            while not status.finished:
                time.sleep(poll_s)
                status = backend.status(job_id)
    except KeyboardInterrupt:
        backend.cancel(job_id)
        typer.echo(f"{job_id}: cancelled", err=True)
        return 130
    result = getattr(backend, "result", lambda _id: None)(job_id) or {}
    code = int(result.get("exit_code", 0 if status.state == "succeeded" else 1))
    if status.state == "cancelled" and not result:
        code = 130
    typer.echo(f"{job_id}: {status.state}" + (f" after {status.restarts} restart(s)" if status.restarts else ""))
    if code != 0 and status.detail:
        typer.echo(status.detail, err=True)
    return code


jobs_app = command_group("jobs", help="Follow submitted jobs: list them, their status, their logs; cancel one.")


def _resolve(job: str, on: str | None, db: Path | None) -> tuple[Backend, str]:
    """The backend and job id for what the user typed: a recorded id or name, or any id with --on."""
    records = _registry(db).find(job, backend=on)
    if len(records) > 1:
        listed = ", ".join(f"{r.backend}:{r.job_id}" for r in records[:5])
        fail(f"{job!r} matches several recorded jobs ({listed}); give the full id or --on")
    if records:
        return _backend(records[0].backend), records[0].job_id
    if on:
        return _backend(on), job
    fail(f"no job {job!r} in the registry; maru jobs ls lists them, or pass --on BACKEND")


@jobs_app.command("ls")
def jobs_ls(
    db: RegistryDb = None,
    backend: Annotated[str | None, typer.Option("--on", help="Only jobs of this backend.")] = None,
    live: Annotated[
        bool, typer.Option("--status", "-s", help="Ask each backend for the job's state.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="How many jobs.")] = 20,
) -> None:
    """List submitted jobs, newest first."""
    records = _registry(db).list(backend=backend, limit=limit)
    if not records:
        typer.echo("No jobs submitted yet (maru launch JOB.toml --on BACKEND submits one).")
        return
    rows = [("SUBMITTED", "BACKEND", "JOB ID", "NAME", "STATE" if live else "SPEC")]
    for record in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.submitted_at))
        last: str
        if live:
            try:
                last = _backend(record.backend).status(record.job_id).state
            except (LaunchError, ConfigurationError) as exc:
                last = f"unknown ({str(exc).splitlines()[0][:60]})"
        else:
            last = record.spec_path or ""
        rows.append((when, record.backend, record.job_id, record.name, last))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])


@jobs_app.command("status")
def jobs_status(
    job: JobArgument,
    on: OnOption = None,
    db: RegistryDb = None,
) -> None:
    """Show a job's state: pending, running, succeeded, failed, cancelled or unknown."""
    backend, job_id = _resolve(job, on, db)
    with _reported():
        status = backend.status(job_id)
    typer.echo(f"{status.job_id}: {status.state}")
    if status.detail:
        typer.echo(f"  {status.detail}")
    typer.echo(f"  restarts: {status.restarts}")


@jobs_app.command("logs")
def jobs_logs(
    job: JobArgument,
    on: OnOption = None,
    db: RegistryDb = None,
    rank: Annotated[int | None, typer.Option("--rank", "-r", min=0, help="Only this node.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")] = False,
) -> None:
    """Print a job's output."""
    backend, job_id = _resolve(job, on, db)
    with _reported():
        for line in backend.logs(job_id, follow=follow, rank=rank):
            typer.echo(line)


@jobs_app.command("cancel")
def jobs_cancel(
    job: JobArgument,
    on: OnOption = None,
    db: RegistryDb = None,
) -> None:
    """Stop a job. A job that has already finished is left as it is, and says how it ended."""
    backend, job_id = _resolve(job, on, db)
    with _reported():
        status = backend.status(job_id)
        if status.finished:
            typer.echo(f"{job_id} had already finished ({status.state}): nothing to cancel")
            return
        backend.cancel(job_id)
    typer.echo(f"cancelled {job_id}")
