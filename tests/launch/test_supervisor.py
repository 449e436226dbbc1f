"""The local job's supervisor without torchrun: how it classifies the agents' exit codes into
``result.json``, and its command line; the job folder both processes share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maru.launch.jobdir import REQUEUE_EXIT_CODE, JobFolder, write_json
from maru.launch.supervisor import Supervisor


def _supervisor(tmp_path: Path) -> Supervisor:
    folder = JobFolder(tmp_path)
    write_json(folder.job_file, {"port": 1, "commands": [], "checkpoint_dir": "/ckpt"})
    return Supervisor(tmp_path)


def _finish(supervisor: Supervisor, codes: list[int]) -> dict[str, object]:
    code = supervisor._finish(codes)
    result = supervisor.folder.result()
    assert result is not None and result["exit_code"] == code and result["exit_codes"] == codes
    return result


def test_all_agents_done_is_success_even_with_a_lost_node(tmp_path: Path) -> None:
    result = _finish(_supervisor(tmp_path), [0, -9])
    assert result["state"] == "succeeded" and result["exit_code"] == 0
    assert result["detail"] == "all workers finished (1 node(s) lost on the way)"
    assert result["restarts"] == 0


def test_a_cancelled_job_asks_for_requeue(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    supervisor.folder.cancelled_marker.write_text("0")
    result = _finish(supervisor, [1])
    assert (result["state"], result["exit_code"]) == ("cancelled", REQUEUE_EXIT_CODE)


def test_preemption_names_the_ranks_that_checkpointed(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    (tmp_path / "preempted").mkdir()
    for rank in (1, 0):
        (tmp_path / "preempted" / f"rank{rank}.json").write_text("{}")
    result = _finish(supervisor, [REQUEUE_EXIT_CODE])
    assert (result["state"], result["exit_code"]) == ("failed", REQUEUE_EXIT_CODE)
    assert "checkpointed (rank0, rank1)" in str(result["detail"]) and "/ckpt" in str(result["detail"])


def test_a_failure_carries_the_first_positive_exit_code(tmp_path: Path) -> None:
    result = _finish(_supervisor(tmp_path), [-15, 3, 1])
    assert (result["state"], result["exit_code"]) == ("failed", 3)
    assert result["detail"] == "agents exited with [-15, 3, 1]" and "root_cause" not in result


def test_the_command_line_wants_a_job_folder(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "maru.launch.supervisor", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "python -m maru.launch.supervisor JOB_DIR" in proc.stderr


def test_job_folder_reads_tolerate_missing_and_torn_files(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path)
    assert folder.job() == {} and folder.result() is None
    assert folder.pids() == {"supervisor": None, "agents": []}
    folder.result_file.write_text('{"state": "succ')  # half-written
    assert folder.result() is None
    folder.write_result("succeeded", 0, [0], "done", restarts=2)
    assert json.loads(folder.result_file.read_text())["restarts"] == 2
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("rank,node,local", [(0, 0, 0), (3, 1, 1)])
def test_rank_logs_come_from_the_newest_attempt(tmp_path: Path, rank: int, node: int,
                                                local: int) -> None:
    folder = JobFolder(tmp_path)
    for attempt in (0, 1):
        worker = folder.node_logs_dir(node) / "run" / f"attempt_{attempt}" / str(local)
        worker.mkdir(parents=True)
        (worker / "stdout.log").write_text(f"attempt {attempt}\n")
    assert folder.rank_logs(rank // 2, rank % 2) == [worker / "stdout.log"]
    assert folder.restarts() == 1
