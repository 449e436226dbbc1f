"""The distributed environment: torchrun, Slurm and Kubeflow variables, Slurm host lists, the
process group's idempotent start, SIGTERM as a flag, and clean exits of repeated DDP runs."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from maru.errors import ConfigurationError
from maru.train.dist import (
    PREEMPTED_EXIT_CODE,
    DistEnv,
    Preempted,
    _tasks_per_node,
    destroy_process_group,
    init_process_group,
    install_sigterm_handler,
    parse_hostlist,
)

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402


def test_torchrun_variables() -> None:
    env = DistEnv.from_environ(
        {
            "RANK": "5",
            "WORLD_SIZE": "8",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "4",
            "GROUP_RANK": "1",
            "MASTER_ADDR": "10.0.0.1",
            "MASTER_PORT": "29400",
            "TORCHELASTIC_RUN_ID": "x",
        }
    )
    assert env == DistEnv(5, 8, 1, 4, 1, "10.0.0.1", 29400, "torchrun")
    assert env.distributed and not env.is_main
    assert env.export()["RANK"] == "5"


def test_single_process_when_nothing_is_set() -> None:
    env = DistEnv.from_environ({})
    assert env.world_size == 1 and env.rank == 0 and not env.distributed and env.source == "single"


def test_slurm_variables_and_first_host_as_master() -> None:
    env = DistEnv.from_environ(
        {
            "SLURM_PROCID": "6",
            "SLURM_NTASKS": "8",
            "SLURM_LOCALID": "2",
            "SLURM_NODEID": "1",
            "SLURM_TASKS_PER_NODE": "4(x2)",
            "SLURM_JOB_NODELIST": "node[07-08]",
            "SLURM_JOB_ID": "123456",
        }
    )
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (6, 8, 2, 4)
    assert env.node_rank == 1 and env.master_addr == "node07" and env.source == "slurm"
    assert env.master_port == 20000 + 3456


def test_torchrun_wins_over_slurm() -> None:
    env = DistEnv.from_environ(
        {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}
    )
    assert env.rank == 3 and env.world_size == 4 and env.source == "torchrun"


def test_kubeflow_pytorchjob_one_process_per_pod() -> None:
    env = DistEnv.from_environ(
        {"RANK": "2", "WORLD_SIZE": "3", "MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456"}
    )
    assert env.source == "kubeflow" and env.node_rank == 2 and env.local_world_size == 1
    assert env.master_addr == "job-master-0" and env.master_port == 23456


def test_kubeflow_pet_variables_before_torchrun() -> None:
    env = DistEnv.from_environ(
        {"PET_NNODES": "1:2", "PET_NPROC_PER_NODE": "4", "PET_NODE_RANK": "1", "PET_MASTER_ADDR": "m"}
    )
    assert (env.world_size, env.rank, env.node_rank, env.master_addr) == (8, 4, 1, "m")


def test_bad_integer_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="WORLD_SIZE"):
        DistEnv.from_environ({"RANK": "0", "WORLD_SIZE": "two"})


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("node[01-03,07],gpu5", ["node01", "node02", "node03", "node07", "gpu5"]),
        ("a1", ["a1"]),
        ("r[1-2]n[09-10]", ["r1n09", "r1n10", "r2n09", "r2n10"]),
        ("x[8-10]", ["x8", "x9", "x10"]),
    ],
)
def test_hostlist(text: str, hosts: list[str]) -> None:
    assert parse_hostlist(text) == hosts


@pytest.mark.parametrize("text", ["node[01-03", "node01]", "node[a-b]"])
def test_bad_hostlist(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_hostlist(text)


def test_tasks_per_node() -> None:
    assert _tasks_per_node("4(x2),3", 2) == 3
    assert _tasks_per_node("4(x2),3", 1) == 4
    assert _tasks_per_node("garbage", 0) == 0


def test_process_group_not_started_for_one_process() -> None:
    assert init_process_group(DistEnv()) is False
    destroy_process_group()  # no group: a no-op


def test_sigterm_sets_a_flag_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    flag = install_sigterm_handler()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.set
    finally:
        flag.restore()
    assert signal.getsignal(signal.SIGTERM) == before


def test_preempted_exits_with_143() -> None:
    exc = Preempted(12, "/ckpt/step_12")
    assert isinstance(exc, SystemExit) and exc.code == PREEMPTED_EXIT_CODE == 143
    assert "step 12" in str(exc) and "/ckpt/step_12" in str(exc)


@pytest.mark.slow
def test_five_ddp_runs_exit_cleanly(tmp_path: Path) -> None:
    # With checkpoints too: their DCP and DDP objects once outlived fit() in reference cycles and
    # aborted some runs at interpreter exit ("terminate called without an active exception").
    for i in range(5):
        ckpt = ("--ckpt-dir", str(tmp_path / f"ckpt{i}"), "--ckpt-every", "2") if i % 2 else ()
        proc = tr.run_script(tmp_path / str(i), "--strategy", "ddp", "--steps", "4", *ckpt)
        tr.check(proc)
        for bad in ("Abort", "terminate called", "Traceback", "NOT been destroyed"):
            assert bad not in proc.stderr, proc.stderr[-3000:]
