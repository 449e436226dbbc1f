"""ProgressBar: plain lines off a terminal, a rich bar on one, silent when disabled."""

from __future__ import annotations

import io

import pytest

from maru.train import progress
from maru.train.progress import ProgressBar, format_metrics


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(progress.time, "perf_counter", fake)
    return fake


def test_format_metrics() -> None:
    import torch

    assert format_metrics({"loss": 2.3456789, "lr": 0.0003, "step": 7}) == "loss 2.346 | lr 0.0003 | step 7"
    assert format_metrics({"loss": torch.tensor(1.5)}) == "loss 1.5"


def test_plain_lines_when_not_a_terminal_throttled_to_one_a_second(clock: _Clock) -> None:
    out = io.StringIO()
    bar = ProgressBar(total=100, file=out)
    bar.update(0)
    for step in range(1, 51):
        clock.now += 0.125
        bar.update(step, {"loss": 1.0 / step} if step % 4 == 0 else None)
    bar.close()
    lines = out.getvalue().splitlines()
    # metrics every 0.5 s, lines at most every 1 s, and the last step at close
    steps = [line.split(" | ")[0] for line in lines]
    assert steps == [f"train step {s}/100" for s in (4, 12, 20, 28, 36, 44, 50)]
    assert lines[-1].endswith("loss 0.02083 | 8.00 it/s | eta 0:00:06")


def test_close_prints_the_last_step_once(clock: _Clock) -> None:
    out = io.StringIO()
    with ProgressBar(total=None, file=out) as bar:
        bar.update(1, {"loss": 2.0})
        clock.now += 0.2
        bar.update(2, {"loss": 1.0})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("train step 1 | loss 2")
    assert lines[-1].startswith("train step 2 | loss 1")
    assert len(lines) == 2


def test_disabled_prints_nothing() -> None:
    out = io.StringIO()
    bar = ProgressBar(total=10, enabled=False, file=out)
    for step in range(10):
        bar.update(step, {"loss": 1.0})
    bar.close()
    assert out.getvalue() == ""


def test_rich_bar_on_a_terminal_shows_step_and_metrics(clock: _Clock) -> None:
    out = io.StringIO()
    bar = ProgressBar(total=20, file=out, force_terminal=True, description="fit")
    draws = 0
    original = bar._draw

    def counting_draw(step: int, now: float) -> None:
        nonlocal draws
        draws += 1
        original(step, now)

    bar._draw = counting_draw  # type: ignore[method-assign]
    for step in range(1, 21):
        clock.now += 0.01  # 100 steps/s: the bar redraws at most every 0.1 s
        bar.update(step, {"loss": 0.5})
    bar.close()
    assert draws <= 4  # steps 1, 11, 20 (the last) and close
    text = out.getvalue()
    assert "fit" in text and "20/20" in text and "loss 0.5" in text
