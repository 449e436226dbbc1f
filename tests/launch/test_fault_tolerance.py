"""Fault tolerance of the local backend, end to end under torchrun (gloo, a tiny MLP):
a killed worker, preemption, a hang, losing a node of an elastic job, and a failing worker."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import launch_helpers as lh  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unbroken 2-worker run: the weights every recovered run must end with."""
    root = tmp_path_factory.mktemp("ref")
    out = root / "out"
    code = lh.backend(root / "jobs").run(lh.make_spec(out, "ref"))
    assert code == 0
    return out


def test_killed_worker_restarts_and_ends_bit_identical(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "out"
    b = lh.backend(tmp_path / "jobs")
    spec = lh.make_spec(out, "kill", env={"MARU_TEST_KILL_AT": "8"})  # rank 1, in step 8
    assert b.run(spec) == 0
    killed = json.loads((out / "killed.json").read_text())
    resumed = [e for e in lh.events(out, 1) if e["attempt"] == 1]
    assert resumed and resumed[0]["step"] == 6  # the checkpoint of step 6
    for rank in (0, 1):
        assert lh.identical(lh.weights(reference, rank), lh.weights(out, rank))
    assert lh.summary(out)["resumed_from"].endswith("6")
    job_id = next(p.name for p in (tmp_path / "jobs").glob("kill-*"))
    assert b.status(job_id).restarts == 1
    lh.report("worker SIGKILL", restart_to_resume_s=round(resumed[0]["time"] - killed["time"], 2),
              steps_lost=killed["step"] - resumed[0]["step"])


def test_preemption_checkpoints_exits_143_and_relaunch_resumes(
    tmp_path: Path, reference: Path
) -> None:
    out = tmp_path / "out"
    b = lh.backend(tmp_path / "jobs", preempt_deadline_s=60)
    spec = lh.make_spec(out, "term", args=("--step-sleep", "0.4"))
    handle = b.submit(spec)
    lh.wait_until(lambda: lh.checkpoints(out) and len(lh.events(out, 1)) == 1, what="a checkpoint")
    lh.wait_until(lambda: bool(b.pids(handle.job_id)["agents"]), what="agent pids")
    agent = b.pids(handle.job_id)["agents"][0]
    os.kill(agent, signal.SIGTERM)
    status = b.wait_for(handle.job_id, timeout=120)
    result = b.result(handle.job_id)
    assert result is not None and result["exit_code"] == 143, result
    assert "requeue" in status.detail and "preempted" in status.detail
    saved = lh.checkpoints(out)[-1]
    assert saved < 16  # stopped early, with a checkpoint of the step it stopped at
    assert sorted(p.name for p in (Path(handle.extra["job_dir"]) / "preempted").iterdir()) == [
        "rank0.json", "rank1.json"]
    assert b.run(spec) == 0  # the re-launch resumes from the preemption checkpoint
    assert lh.summary(out)["resumed_from"].endswith(str(saved))
    for rank in (0, 1):
        assert lh.identical(lh.weights(reference, rank), lh.weights(out, rank))
    lh.report("preemption SIGTERM", checkpoint_step=saved, steps_lost=0)


def test_hang_dumps_stacks_and_the_group_restarts(tmp_path: Path, reference: Path) -> None:
    out = tmp_path / "out"
    b = lh.backend(tmp_path / "jobs")
    spec = lh.make_spec(out, "hang", env={"MARU_TEST_HANG_AT": "8"}, hang_timeout_s=8)
    assert b.run(spec) == 0
    job_dir = next((tmp_path / "jobs").glob("hang-*"))
    dump = (job_dir / "hangs" / "hang_rank1_attempt0.txt").read_text()
    assert "no step progress" in dump
    assert "ft_train.py" in dump and "in step" in dump  # the frame sleeping in training_step
    resumed = [e for e in lh.events(out, 1) if e["attempt"] == 1]
    assert resumed and resumed[0]["step"] == 6
    for rank in (0, 1):
        assert lh.identical(lh.weights(reference, rank), lh.weights(out, rank))
    hung = json.loads((out / "hang.marker").read_text())
    lh.report("hang (watchdog 8 s)", restart_to_resume_s=round(resumed[0]["time"] - hung["time"], 2),
              steps_lost=1)


def test_elastic_job_continues_on_fewer_nodes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    b = lh.backend(tmp_path / "jobs", rdzv_conf={
        "last_call_timeout": 5, "keep_alive_interval": 1, "keep_alive_max_attempt": 3})
    spec = lh.make_spec(out, "elastic", nproc=1, nnodes="1:2", max_restarts=2,
                        args=("--steps", "30", "--step-sleep", "0.25"))
    handle = b.submit(spec)
    lh.wait_until(lambda: bool(lh.events(out, 1)), what="two nodes training")
    joined = lh.events(out, 1)[-1]["step"]
    lh.wait_until(lambda: any(s > joined for s in lh.checkpoints(out)), what="a checkpoint")
    agents = b.pids(handle.job_id)["agents"]
    assert len(agents) == 2
    saved_before = lh.checkpoints(out)[-1]
    killed_at = time.time()
    b.kill_node(handle.job_id, 1)  # node 1's agent and its worker
    status = b.wait_for(handle.job_id, timeout=180)
    assert status.state == "succeeded", status.detail
    final = lh.summary(out)
    assert final["step"] == 30 and final["world"] == 1 and final["resumed_from"]
    resumed = [e for e in lh.events(out, 0) if e["world"] == 1 and e["time"] > killed_at]
    assert resumed and resumed[0]["step"] >= saved_before  # from the newest checkpoint
    lh.report("elastic node loss", restart_to_resume_s=round(resumed[0]["time"] - killed_at, 2),
              resumed_step=resumed[0]["step"], newest_checkpoint_at_kill=saved_before)


def test_failing_worker_ends_with_a_root_cause(tmp_path: Path) -> None:
    out = tmp_path / "out"
    b = lh.backend(tmp_path / "jobs")
    spec = lh.make_spec(out, "fail", env={"MARU_TEST_FAIL_AT": "3"}, max_restarts=0)
    assert b.run(spec) == 1
    job_id = next(p.name for p in (tmp_path / "jobs").glob("fail-*"))
    status = b.status(job_id)
    assert status.state == "failed"
    cause = b.result(job_id)["root_cause"]  # type: ignore[index]
    line = next(i for i, text in enumerate(lh.SCRIPT.read_text().splitlines(), 1)
                if "raise ValueError" in text)
    assert cause["rank"] == "1" and cause["exc_type"] == "ValueError"
    assert cause["message"] == "injected failure at step 2"
    assert cause["where"] == f"{lh.SCRIPT}:{line}"
    assert "rank 1: ValueError: injected failure at step 2" in status.detail
    assert f"ft_train.py:{line}" in status.detail
