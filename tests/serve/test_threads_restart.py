"""A thread outlives the server: ``maru serve`` is killed while the thread waits for approval, a new
``maru serve`` process reads it from the SQLite checkpoint in maru's home and finishes it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .test_cli_serve import maru_serve


def test_a_new_server_resumes_the_thread_a_killed_one_left_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARU_HOME", str(tmp_path / "home"))  # the servers' threads.sqlite goes here
    with maru_serve("threads_targets:approval", tmp_path) as (proc, url), httpx.Client(timeout=30) as client:
        thread = client.post(f"{url}/threads").json()["thread_id"]
        paused = client.post(f"{url}/threads/{thread}/runs", json={"input": {"request": "/tmp/x"}}).json()
        assert paused["status"] == "interrupted"
        proc.kill()
        proc.wait(30)

    with maru_serve("threads_targets:approval", tmp_path) as (proc, url), httpx.Client(timeout=30) as client:
        state = client.get(f"{url}/threads/{thread}/state").json()
        assert state["status"] == "interrupted" and state["interrupts"] == paused["interrupts"]
        done = client.post(f"{url}/threads/{thread}/resume", json={"resume": {"action": "approve"}}).json()
        assert done["status"] == "done" and done["values"]["results"] == ["deleted /tmp/x"]
        assert [c["metadata"]["source"] for c in client.get(f"{url}/threads/{thread}/history").json()["checkpoints"]] == [
            "loop", "loop", "loop", "input"
        ]
