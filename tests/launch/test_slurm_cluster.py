"""Slurm for real: a single-node cluster on this host (scripts/slurm.sh installs slurm-wlm and
munge, writes the configuration, starts munged, slurmctld and slurmd). ``maru launch --on slurm``
submits a 2-process torchrun job that trains and finishes; a longer one is preempted the way Slurm
does it ahead of a time limit and requeues itself, resuming from its checkpoint; a third is
cancelled. If the cluster cannot be started the tests fail (CI must run them), with the script's
output.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from maru.launch.backend import JobStatus
from maru.launch.slurm import SlurmBackend

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "tests" / "launch" / "scripts" / "slurm_train.py"
WAIT_S = 180.0


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    try:
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "slurm.sh")], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/slurm.sh did not finish in 900 s:\n{exc.stdout}\n{exc.stderr}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/slurm.sh could not start the Slurm cluster (exit {done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The "shared filesystem": checkpoints, logs and the job registry of every test."""
    return tmp_path_factory.mktemp("slurm")


@pytest.fixture
def backend(slurm_cluster: None, shared: Path) -> Iterator[SlurmBackend]:
    submitted: list[str] = []
    slurm = SlurmBackend(poll_s=0.5)
    slurm.submitted = submitted  # type: ignore[attr-defined]
    yield slurm
    for job_id in submitted:  # leave nothing running behind a failed test
        subprocess.run(["scancel", job_id], check=False, capture_output=True)


def maru(*args: str) -> str:
    exe = Path(sys.executable).with_name("maru")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from maru.cli import main; main()"]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"maru {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def write_spec(shared: Path, name: str, args: list[str], max_restarts: int = 1) -> Path:
    path = shared / f"{name}.toml"
    quoted = ", ".join(f'"{a}"' for a in args)
    path.write_text(
        f'name = "{name}"\n'
        "nnodes = 1\n"
        "nproc_per_node = 2\n"
        f"max_restarts = {max_restarts}\n"
        f'checkpoint_dir = "{shared / "ckpt" / name}"\n'
        f'workdir = "{shared}"\n'
        "[entrypoint]\n"
        f'script = "{TRAIN}"\n'
        f"args = [{quoted}]\n"
        "[slurm]\n"
        'partition = "debug"\n'
        "signal_lead_s = 60\n"
    )
    return path


def launch(backend: SlurmBackend, spec: Path, shared: Path) -> str:
    out = maru("launch", str(spec), "--on", "slurm", "--db", str(shared / "jobs.sqlite"))
    found = re.search(r"submitted \S+ to slurm: (\d+)", out)
    assert found, out
    backend.submitted.append(found.group(1))  # type: ignore[attr-defined]
    return found.group(1)


def diagnostics(backend: SlurmBackend, job_id: str) -> str:
    parts = []
    for cmd in (["squeue", "-a"], ["scontrol", "show", "job", job_id], ["sinfo", "-N", "-l"]):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        parts.append(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    try:
        parts.append("--- job log (tail)\n" + "\n".join(list(backend.logs(job_id))[-60:]))
    except Exception as exc:  # diagnostics must not hide the real failure
        parts.append(f"--- job log unavailable: {exc}")
    for name in ("slurmctld", "slurmd"):
        log = Path(f"/var/log/slurm/{name}.log")
        if log.exists():
            parts.append(f"--- {log} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(parts)


def wait_until(
    backend: SlurmBackend, job_id: str, what: str, done: Callable[[JobStatus], bool]
) -> JobStatus:
    deadline = time.monotonic() + WAIT_S
    while True:
        status = backend.status(job_id)
        if done(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job_id} did not reach {what} in {WAIT_S:.0f} s (last: {status})\n"
                + diagnostics(backend, job_id),
                pytrace=False,
            )
        time.sleep(0.5)


def steps_in(lines: list[str]) -> list[tuple[int, float]]:
    found = (re.search(r"maru-test step=(\d+) .*t=([0-9.]+)", line) for line in lines)
    return [(int(m.group(1)), float(m.group(2))) for m in found if m]


def runs(lines: list[str], job_id: str) -> list[list[str]]:
    """The log split at the script's ``maru: job ID run N`` banners (one part per run)."""
    parts: list[list[str]] = []
    for line in lines:
        if line.startswith(f"maru: job {job_id} run "):
            parts.append([])
        if parts:
            parts[-1].append(line)
    return parts


# --------------------------------------------------------------------------------------- tests
@pytest.mark.timeout(300)
def test_two_process_job_finishes(backend: SlurmBackend, shared: Path) -> None:
    spec = write_spec(shared, "slurm-ok", ["--steps", "8", "--ckpt-every", "4"])
    assert "#SBATCH --partition=debug" in maru("launch", str(spec), "--on", "slurm", "--dry-run")
    job_id = launch(backend, spec, shared)
    status = wait_until(backend, job_id, "a finished state", lambda s: s.finished)
    assert status.state == "succeeded", diagnostics(backend, job_id)
    assert status.restarts == 0
    assert status.name == "slurm-ok"

    lines = list(backend.logs(job_id))
    assert any("maru-test start world=2" in line for line in lines)
    assert [step for step, _ in steps_in(lines)] == list(range(1, 9))
    assert "0: maru-test done step=8 resumed_from=None" in lines
    assert "maru: training step exited with code 0" in lines
    node0 = list(backend.logs(job_id, rank=0))
    assert "maru-test done step=8 resumed_from=None" in node0  # the srun label is stripped
    assert list(backend.logs(job_id, rank=1)) == []  # one node only
    assert (shared / "ckpt" / "slurm-ok" / "step_000000008").is_dir()
    assert backend.log_file(job_id) == shared / ".maru" / "slurm" / "slurm-ok" / f"{job_id}.log"

    db = str(shared / "jobs.sqlite")
    assert f"{job_id}: succeeded" in maru("jobs", "status", job_id, "--db", db)
    assert "maru-test done step=8" in maru("jobs", "logs", "slurm-ok", "--db", db)
    assert job_id in {s.job_id for s in backend.list(registry=_registry(shared))}


def _registry(shared: Path):  # type: ignore[no-untyped-def]
    from maru.launch import JobRegistry

    return JobRegistry(shared / "jobs.sqlite")


@pytest.mark.timeout(400)
def test_preempted_job_requeues_and_resumes(backend: SlurmBackend, shared: Path) -> None:
    max_steps, every = 40, 5
    spec = write_spec(
        shared,
        "slurm-preempt",
        ["--steps", str(max_steps), "--ckpt-every", str(every), "--sleep", "0.3"],
        max_restarts=2,
    )
    ckpt = shared / "ckpt" / "slurm-preempt"
    job_id = launch(backend, spec, shared)

    def checkpointed(status: JobStatus) -> bool:
        if status.finished:
            return True
        lines = list(backend.logs(job_id)) if backend.log_file(job_id).exists() else []
        steps = [step for step, _ in steps_in(lines)]
        return bool(steps) and steps[-1] > every and any(ckpt.glob("step_*"))

    status = wait_until(backend, job_id, "its first checkpoint", checkpointed)
    assert status.state == "running", diagnostics(backend, job_id)

    # What Slurm does `signal_lead_s` before the time limit (--signal=B:TERM@lead): SIGTERM to the
    # batch shell only. The script's trap forwards it to the torchrun step.
    signalled_at = time.time()
    subprocess.run(["scancel", "--signal=TERM", "--batch", job_id], check=True)
    status = wait_until(backend, job_id, "a finished state", lambda s: s.finished)
    assert status.state == "succeeded", diagnostics(backend, job_id)
    assert status.restarts == 1

    lines = list(backend.logs(job_id))
    first, second = runs(lines, job_id)
    assert any("SIGTERM at" in line for line in first)
    stopped = next(m for line in first if (m := re.search(r"preempted by SIGTERM at step (\d+), checkpoint (\S+)", line)))
    stop_step = int(stopped.group(1))
    assert Path(stopped.group(2)).name == f"step_{stop_step:09d}"
    assert any("maru: preempted: requeueing (restart 1 of 2)" in line for line in first)

    done = next(m for line in second if (m := re.search(r"done step=(\d+) resumed_from=(\S+)", line)))
    assert int(done.group(1)) == max_steps
    resumed_step = int(Path(done.group(2)).name.removeprefix("step_"))
    assert resumed_step == stop_step  # the checkpoint written at the preemption is the one resumed

    before, after = steps_in(first), steps_in(second)
    assert [s for s, _ in before] == list(range(1, before[-1][0] + 1))
    assert [s for s, _ in after] == list(range(resumed_step + 1, max_steps + 1))
    redone = before[-1][0] - resumed_step
    assert 0 <= redone <= every  # at most the steps since the last checkpoint
    restart_to_resume = after[0][1] - signalled_at
    print(
        f"\nslurm preemption: stopped at step {before[-1][0]}, resumed from step {resumed_step}, "
        f"steps redone {redone}, preempt signal -> first step after resume {restart_to_resume:.1f} s"
    )


@pytest.mark.timeout(300)
def test_an_error_in_the_training_code_is_not_requeued(backend: SlurmBackend, shared: Path) -> None:
    """torchrun restarts the failing workers in place (max_restarts); after that the job fails
    with exit code 1 and stays failed: requeueing a deterministic error would fail again."""
    spec = write_spec(shared, "slurm-bug", ["--steps", "20", "--fail-at", "3"], max_restarts=2)
    job_id = launch(backend, spec, shared)
    status = wait_until(backend, job_id, "a finished state", lambda s: s.finished)
    time.sleep(3)  # a requeue would show up as pending again
    status = backend.status(job_id)
    assert (status.state, status.restarts) == ("failed", 0), diagnostics(backend, job_id)
    lines = list(backend.logs(job_id))
    assert any("injected bug in training step 3" in line for line in lines)
    assert "maru: training step exited with code 1" in lines
    assert any("failed with exit code 1: not requeueing" in line for line in lines)
    assert not any("requeueing (restart" in line for line in lines)


@pytest.mark.timeout(300)
def test_cancel_stops_without_requeue(backend: SlurmBackend, shared: Path) -> None:
    spec = write_spec(shared, "slurm-cancel", ["--steps", "10000", "--sleep", "0.2"], max_restarts=3)
    job_id = launch(backend, spec, shared)

    def stepping(status: JobStatus) -> bool:
        if status.finished:
            return True
        return backend.log_file(job_id).exists() and bool(steps_in(list(backend.logs(job_id))))

    assert wait_until(backend, job_id, "its first step", stepping).state == "running"
    assert f"cancelled {job_id}" in maru("jobs", "cancel", job_id, "--db", str(shared / "jobs.sqlite"))
    status = wait_until(backend, job_id, "a finished state", lambda s: s.finished)
    assert status.state == "cancelled", diagnostics(backend, job_id)
    time.sleep(3)  # a requeue would show up as pending again
    status = backend.status(job_id)
    assert (status.state, status.restarts) == ("cancelled", 0), diagnostics(backend, job_id)
    assert not any("requeueing (restart" in line for line in backend.logs(job_id))
