"""Slurm without daemons: the rendered sbatch script (options, environment, srun/torchrun line,
trap and requeue logic, valid bash), ``scontrol show job`` parsing and state mapping, and the
errors when the Slurm commands are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maru.errors import ConfigurationError, LaunchError
from maru.launch import JobSpec, get_backend, parse_spec
from maru.launch.slurm import SlurmBackend, parse_job_record, render_sbatch, slurm_state


def spec_of(**overrides: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "fmnist",
        "entrypoint": {"script": "train.py", "args": ["--steps", "10"]},
        "nproc_per_node": 2,
        **overrides,
    }
    return parse_spec(data)


def options(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]


def backend(tmp_path: Path) -> SlurmBackend:
    return SlurmBackend(python="/opt/venv/bin/python", log_root=tmp_path / "logs")


def test_fixed_nodes_script(tmp_path: Path) -> None:
    script = backend(tmp_path).render(spec_of(nnodes=2, max_restarts=4))
    opts = options(script)
    assert script.startswith("#!/bin/bash\n")
    assert opts[:4] == ["--job-name=fmnist", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=2"]
    assert "--requeue" in opts
    assert "--open-mode=append" in opts
    assert "--signal=B:TERM@120" in opts  # SlurmOptions' default lead when there is no [slurm]
    assert f"--output={tmp_path / 'logs' / 'fmnist' / '%j.log'}" in opts
    assert "--comment=maru" in opts
    assert not any(o.startswith(("--time", "--partition", "--gres", "--mem")) for o in opts)
    assert "max_restarts=4" in script
    assert "restarts=${SLURM_RESTART_COUNT:-0}" in script
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1' in script
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    assert "--kill-on-bad-exit=1" in srun and "--label" in srun
    torchrun = script.split("--ntasks-per-node=1 \\\n", 1)[1].splitlines()[0].strip()
    assert torchrun.startswith("/opt/venv/bin/python -m maru.launch.node --nnodes 2 ")
    assert '--rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT"' in torchrun
    assert "--rdzv-backend c10d" in torchrun and "--rdzv-id fmnist" in torchrun
    assert torchrun.endswith("train.py --steps 10 &")
    assert "scontrol requeue \"$SLURM_JOB_ID\"" in script
    assert "trap forward_term TERM" in script


def test_elastic_nodes_range(tmp_path: Path) -> None:
    script = backend(tmp_path).render(spec_of(nnodes="2:4"))
    assert "--nodes=2-4" in options(script)
    assert "--nnodes 2:4" in script


def test_time_limit_signal_partition_account_qos_and_resources(tmp_path: Path) -> None:
    spec = spec_of(
        resources={"cpus": 3.5, "memory": "8Gi", "gpus": 4},
        slurm={
            "partition": "gpu",
            "account": "proj42",
            "qos": "high",
            "time": "1-02:00:00",
            "signal_lead_s": 300,
            "extra_args": ["--exclusive", "--constraint=a100"],
        },
        workdir="/scratch/run",
    )
    opts = options(backend(tmp_path).render(spec))
    for expected in (
        "--cpus-per-task=4",
        "--mem=8192M",
        "--gres=gpu:4",
        "--time=1-02:00:00",
        "--signal=B:TERM@300",
        "--partition=gpu",
        "--account=proj42",
        "--qos=high",
        "--chdir=/scratch/run",
    ):
        assert expected in opts
    assert opts[-2:] == ["--exclusive", "--constraint=a100"]


@pytest.mark.parametrize(("memory", "flag"), [("512Mi", "512M"), ("2G", "1908M"), ("1.5Gi", "1536M")])
def test_memory_in_mebibytes(tmp_path: Path, memory: str, flag: str) -> None:
    script = backend(tmp_path).render(spec_of(resources={"memory": memory}))
    assert f"--mem={flag}" in options(script)


def test_environment_is_exported_and_quoted(tmp_path: Path) -> None:
    spec = spec_of(env={"WANDB_MODE": "offline", "GREETING": "it's a 'test' $HOME"}, checkpoint_dir="/ckpt/run 1")
    script = backend(tmp_path).render(spec)
    assert "export WANDB_MODE=offline" in script
    assert "export MARU_JOB_NAME=fmnist" in script
    assert "export PYTHONUNBUFFERED=1" in script
    assert "export MARU_CHECKPOINT_DIR='/ckpt/run 1'" in script
    # the value survives bash's quoting intact
    path = tmp_path / "job.sh"
    path.write_text(script.split("restarts=", 1)[0] + 'printf "%s" "$GREETING"\n')
    out = subprocess.run(["bash", str(path)], capture_output=True, text=True, check=True).stdout
    assert out == "it's a 'test' $HOME"


def test_no_checkpoint_dir_no_export(tmp_path: Path) -> None:
    assert "MARU_CHECKPOINT_DIR" not in backend(tmp_path).render(spec_of())


def test_module_entrypoint(tmp_path: Path) -> None:
    script = backend(tmp_path).render(spec_of(entrypoint={"module": "pkg.train", "args": ["-x"]}))
    assert "--rdzv-id fmnist --shutdown-timeout 110 -m maru.launch.entry -m pkg.train -x &" in script


@pytest.mark.parametrize(
    "overrides",
    [{}, {"nnodes": "1:3", "nproc_per_node": "auto"}, {"slurm": {"time": "00:30:00"}}],
)
def test_script_is_valid_bash(tmp_path: Path, overrides: dict[str, Any]) -> None:
    path = tmp_path / "job.sbatch"
    path.write_text(backend(tmp_path).render(spec_of(**overrides)))
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_render_function_and_default_log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_of()
    assert "--output=/logs/%j.log" in options(render_sbatch(spec, "/logs/%j.log"))
    assert SlurmBackend().log_dir(spec) == tmp_path / ".maru" / "slurm" / "fmnist"
    assert SlurmBackend().log_dir(spec_of(workdir="/w")) == Path("/w/.maru/slurm/fmnist")


def test_get_backend_finds_slurm() -> None:
    assert isinstance(get_backend("slurm"), SlurmBackend)


def test_bad_memory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be given to Slurm"):
        backend(tmp_path).render(spec_of(resources={"memory": "100m"}))


# --------------------------------------------------------------------------- scontrol and states
RECORD = (
    "JobId=17 JobName=fmnist UserId=root(0) GroupId=root(0) Priority=1 JobState=PENDING "
    "Reason=BeginTime Dependency=(null) Requeue=1 Restarts=2 BatchFlag=1 ExitCode=0:0 "
    "TRES=cpu=2,mem=1G,node=1 Comment=maru StdOut=/data/my logs/17.log StdIn=/dev/null"
)


def test_parse_job_record() -> None:
    record = parse_job_record(RECORD)
    assert record["JobId"] == "17"
    assert record["JobState"] == "PENDING"
    assert record["Restarts"] == "2"
    assert record["TRES"] == "cpu=2,mem=1G,node=1"
    assert record["StdOut"] == "/data/my logs/17.log"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("PENDING", "pending"),
        ("REQUEUED", "pending"),
        ("RUNNING", "running"),
        ("COMPLETING", "running"),
        ("COMPLETED", "succeeded"),
        ("CANCELLED by 0", "cancelled"),
        ("CANCELLED+", "cancelled"),
        ("FAILED", "failed"),
        ("TIMEOUT", "failed"),
        ("NODE_FAIL", "failed"),
        ("OUT_OF_MEMORY", "failed"),
        ("WHATEVER", "unknown"),
    ],
)
def test_slurm_state(raw: str, state: str) -> None:
    assert slurm_state(raw) == state


# ------------------------------------------------------------------------- missing Slurm commands
@pytest.fixture
def no_slurm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("sbatch") is None


def test_submit_without_sbatch_says_how_to_install(tmp_path: Path, no_slurm: None) -> None:
    with pytest.raises(LaunchError, match=r"'sbatch' command, not found: is Slurm installed\? run scripts/slurm.sh"):
        backend(tmp_path).submit(spec_of())


@pytest.mark.parametrize("call", ["status", "cancel", "logs"])
def test_commands_without_slurm(tmp_path: Path, no_slurm: None, call: str) -> None:
    target = backend(tmp_path)
    with pytest.raises(LaunchError, match="is Slurm installed"):
        result = getattr(target, call)("42")
        if call == "logs":
            list(result)


def test_bad_job_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a Slurm job id"):
        backend(tmp_path).status("default/pytorchjob/x")


def test_failing_command_is_a_launch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduler that refuses: sbatch's own message comes through."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(LaunchError, match="invalid partition specified: nope"):
        backend(tmp_path).submit(spec_of(slurm={"partition": "nope"}))
    # the script was still written next to the logs, for inspection
    assert (tmp_path / "logs" / "fmnist" / "job.sbatch").read_text().startswith("#!/bin/bash")


def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """Put shell scripts named like Slurm's commands first on PATH."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_status_from_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_commands(tmp_path, monkeypatch, scontrol=f"echo '{RECORD}'")
    status = backend(tmp_path).status("17")
    assert (status.state, status.restarts, status.name) == ("pending", 2, "fmnist")
    assert status.detail == "PENDING (BeginTime)"
    assert backend(tmp_path).log_file("17") == Path("/data/my logs/17.log")


def test_status_falls_back_to_sacct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller forgot the job (MinJobAge): accounting answers, one row per requeue (-D)."""
    fake_commands(
        tmp_path,
        monkeypatch,
        scontrol="echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        sacct="printf '17|fmnist|REQUEUED|0:0\\n17|fmnist|COMPLETED|0:0\\n'",
    )
    status = backend(tmp_path).status("17")
    assert (status.state, status.restarts, status.name) == ("succeeded", 1, "fmnist")
    assert "from sacct" in status.detail


def test_status_unknown_without_accounting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_commands(
        tmp_path,
        monkeypatch,
        scontrol="echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        sacct="echo 'Slurm accounting storage is disabled' >&2; exit 1",
    )
    status = backend(tmp_path).status("17")
    assert status.state == "unknown" and "MinJobAge" in status.detail


def test_logs_filter_by_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "17.log"
    log.write_text("maru: job 17 run 1\n0: from node zero\n1: from node one\n 0: padded label\n")
    fake_commands(tmp_path, monkeypatch, scontrol=f"echo 'JobId=17 JobState=COMPLETED StdOut={log}'")
    slurm = backend(tmp_path)
    assert list(slurm.logs("17"))[0] == "maru: job 17 run 1"
    assert list(slurm.logs("17", rank=0)) == ["from node zero", "padded label"]
    assert list(slurm.logs("17", rank=1)) == ["from node one"]
    assert list(slurm.logs("17", follow=True)) == list(slurm.logs("17"))  # finished: no waiting
