"""The local backend's pieces: rendering torchrun commands, the entry wrapper's error files and
their root-cause summary, job folders; and ``maru launch --on local`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import launch_helpers as lh  # noqa: E402

from maru.errors import ConfigurationError, LaunchError  # noqa: E402
from maru.launch.backend import get_backend  # noqa: E402
from maru.launch.entry import (  # noqa: E402
    format_root_cause,
    parse_child_failed,
    read_error_file,
)
from maru.launch.entry import (
    main as entry_main,
)
from maru.launch.local import LocalBackend, root_cause  # noqa: E402


def test_render_gives_one_torchrun_agent_per_simulated_node(tmp_path: Path) -> None:
    spec = lh.make_spec(tmp_path, "two", nnodes="1:3", nproc=2, max_restarts=4)
    text = LocalBackend(root=tmp_path, nodes=2).render(spec)
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(commands) == 2
    for node, line in enumerate(commands):
        assert "-m torch.distributed.run --nnodes 1:3 --nproc-per-node 2 --max-restarts 4" in line
        assert "--rdzv-backend c10d --rdzv-endpoint 127.0.0.1:29500 --rdzv-id two" in line
        assert f"logs/node{node}" in line and "--tee 3" in line
        assert line.endswith(f"-m maru.launch.entry {lh.SCRIPT} --out {tmp_path}")
    assert "MARU_CHECKPOINT_DIR=" in text and "MARU_HANG_TIMEOUT_S=60" in text
    assert len(LocalBackend(root=tmp_path).render(spec).splitlines()) == 3 + 3  # MAX agents


def test_node_count_outside_the_range_is_an_error(tmp_path: Path) -> None:
    spec = lh.make_spec(tmp_path, nnodes="2:3")
    with pytest.raises(ConfigurationError, match="outside the job's nnodes 2:3"):
        LocalBackend(root=tmp_path, nodes=1).render(spec)
    with pytest.raises(ConfigurationError, match="at least 1"):
        LocalBackend(root=tmp_path, nodes=0)


def test_get_backend_builds_the_local_backend(tmp_path: Path) -> None:
    backend = get_backend("local", root=tmp_path)
    assert isinstance(backend, LocalBackend) and backend.root == tmp_path


def test_unknown_job_is_a_launch_error(tmp_path: Path) -> None:
    backend = LocalBackend(root=tmp_path)
    for call in (backend.status, backend.cancel, lambda j: list(backend.logs(j))):
        with pytest.raises(LaunchError, match="no local job 'nope'"):
            call("nope")


def _run_entry(tmp_path: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "user.py"
    script.write_text(code)
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "maru.launch.entry", str(script), "a1"],
                          capture_output=True, text=True, env=full, timeout=120)


def test_entry_records_rank_exception_and_where(tmp_path: Path) -> None:
    error_file = tmp_path / "error.json"
    code = "import sys\nassert sys.argv[1:] == ['a1']\n\ndef f():\n    raise KeyError('boom')\nf()\n"
    proc = _run_entry(tmp_path, code, {"TORCHELASTIC_ERROR_FILE": str(error_file), "RANK": "3"})
    assert proc.returncode == 1
    cause = read_error_file(error_file)
    assert cause is not None
    assert (cause.rank, cause.exc_type, cause.message) == ("3", "KeyError", "'boom'")
    assert cause.where == f"{tmp_path / 'user.py'}:5"
    text = format_root_cause(cause)
    assert "rank 3: KeyError: 'boom'" in text and "user.py:5" in text


def test_entry_marks_preemption_and_keeps_the_exit_code(tmp_path: Path) -> None:
    proc = _run_entry(tmp_path, "raise SystemExit(143)\n", {"MARU_JOB_DIR": str(tmp_path), "RANK": "1"})
    assert proc.returncode == 143
    assert (tmp_path / "preempted" / "rank1.json").exists()


def test_entry_without_arguments_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        entry_main([])
    assert exc.value.code == 2 and "usage" in capsys.readouterr().err


CHILD_FAILED = """torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
maru.launch.entry FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-25_12:26:49
  host      : node7
  rank      : 5 (local_rank: 1)
  exitcode  : -9 (pid: 23053)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 23053
============================================================
"""


def test_child_failed_report_is_the_fallback_root_cause(tmp_path: Path) -> None:
    cause = parse_child_failed("noise\n" + CHILD_FAILED)
    assert cause is not None
    assert (cause.rank, cause.exc_type, cause.exitcode, cause.host) == ("5", "SIGKILL", -9, "node7")
    assert parse_child_failed("all good") is None
    (tmp_path / "node0.log").write_text(CHILD_FAILED)
    found = root_cause(tmp_path)
    assert found is not None and found.rank == "5" and "signal 9" in found.message


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_maru_launch_runs_a_job_locally_and_jobs_commands_follow_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = tmp_path / "job.toml"
    job.write_text(
        'name = "tiny"\nnproc_per_node = 2\nmax_restarts = 1\n'
        f'checkpoint_dir = "{out / "ckpt"}"\n[entrypoint]\nscript = "{lh.SCRIPT}"\n'
        f'args = ["--out", "{out}", "--steps", "6"]\n[env]\nOMP_NUM_THREADS = "1"\n'
    )
    maru = [str(Path(sys.executable).parent / "maru")]
    env = dict(os.environ, MARU_LOCAL_JOBS=str(tmp_path / "jobs"), MARU_JOBS_DB=str(tmp_path / "db.sqlite"))
    dry = subprocess.run([*maru, "launch", str(job), "--on", "local", "--dry-run"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "-m torch.distributed.run --nnodes 1 --nproc-per-node 2" in dry.stdout
    assert not (tmp_path / "jobs").exists()  # a dry run starts nothing
    run = subprocess.run([*maru, "launch", str(job), "--on", "local"], capture_output=True,
                         text=True, env=env, timeout=240)  # local runs in the foreground by default
    assert run.returncode == 0, run.stderr
    assert "submitted tiny to local" in run.stdout and ": succeeded" in run.stdout
    assert "started 1 agent(s)" in run.stdout  # progress while it ran, not minutes of silence
    assert lh.summary(out)["step"] == 6 and (out / "rank1.pt").exists()
    status = subprocess.run([*maru, "jobs", "status", "tiny"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert "succeeded" in status.stdout, status.stdout + status.stderr
    job_id = next(p.name for p in (tmp_path / "jobs").glob("tiny-*"))
    backend = LocalBackend(root=tmp_path / "jobs")
    assert backend.result(job_id)["exit_codes"] == [0]  # type: ignore[index]
    assert any("attempt_0" in str(p) for p in (tmp_path / "jobs" / job_id / "logs").rglob("stderr.log"))
    assert isinstance(list(backend.logs(job_id, rank=1)), list)
    json.dumps(backend.pids(job_id))


def test_cancelling_a_finished_job_says_it_had_finished(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from maru.cli import app
    from maru.launch.backend import JobHandle
    from maru.launch.jobdir import JobFolder, write_json
    from maru.launch.registry import JobRegistry

    folder = JobFolder(tmp_path / "jobs" / "done-1")
    folder.path.mkdir(parents=True)
    write_json(folder.job_file, {"job_id": "done-1", "name": "done", "nodes": 1})
    folder.write_result("succeeded", 0, [0], "")
    db = tmp_path / "db.sqlite"
    JobRegistry(db).add(JobHandle(backend="local", job_id="done-1", name="done"))
    env = {"MARU_LOCAL_JOBS": str(tmp_path / "jobs")}
    result = CliRunner().invoke(app, ["jobs", "cancel", "done-1", "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    assert "done-1 had already finished (succeeded): nothing to cancel" in result.stdout
    assert "cancelled" not in result.stdout


def test_progress_shows_the_supervisor_and_the_first_worker(tmp_path: Path) -> None:
    """What maru launch --on local prints while it waits (here for a job that has ended)."""
    from maru.launch.jobdir import JobFolder, write_json

    folder = JobFolder(tmp_path / "p-1")
    folder.path.mkdir()
    write_json(folder.job_file, {"job_id": "p-1", "name": "p", "nodes": 2})
    folder.supervisor_log.write_text("[maru supervisor 10:00:00] started 2 agent(s)\n")
    folder.node_log(0).write_text("[default0]:step 10 loss 0.5\n[default1]:step 10 loss 0.5\n")
    folder.node_log(1).write_text("[default0]:step 10 loss 0.5\n")
    folder.write_result("succeeded", 0, [0, 0], "")
    lines = list(LocalBackend(root=tmp_path).progress("p-1"))
    assert lines == ["[maru supervisor 10:00:00] started 2 agent(s)", "step 10 loss 0.5"]
