"""The hang watchdog: it dumps the stuck thread's stack when steps stop, stays quiet while they
advance, and reads its timeout from ``MARU_HANG_TIMEOUT_S``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from maru.errors import ConfigurationError
from maru.train.watchdog import Heartbeat, Watchdog, timeout_from_env


def test_watchdog_dumps_the_stuck_thread(tmp_path: Path) -> None:
    beat = Heartbeat()
    with Watchdog(0.3, beat, dump_dir=tmp_path, exit_code=None) as dog:
        time.sleep(1.0)  # no beats: the watchdog fires while this frame sleeps
    assert dog.fired and dog.fired[0] is not None
    dump = dog.fired[0].read_text()
    assert "no step progress" in dump and "test_watchdog_dumps_the_stuck_thread" in dump


def test_watchdog_stays_quiet_while_steps_advance(tmp_path: Path) -> None:
    with Watchdog(0.5, dump_dir=tmp_path, exit_code=None) as dog:
        for step in range(12):
            dog.beat(step)
            time.sleep(0.1)
    assert dog.fired == []


def test_hang_timeout_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARU_HANG_TIMEOUT_S", "90")
    assert timeout_from_env() == 90.0
    monkeypatch.setenv("MARU_HANG_TIMEOUT_S", "0")
    assert timeout_from_env() is None
    monkeypatch.setenv("MARU_HANG_TIMEOUT_S", "soon")
    with pytest.raises(ConfigurationError, match="MARU_HANG_TIMEOUT_S"):
        timeout_from_env()
