"""A training progress bar that costs nothing per step.

On a terminal it is a rich bar (step/total, speed, time left, latest metrics) redrawn at most
10 times a second by the caller's thread, so no background thread competes with training. When
stdout is not a terminal (a log file, CI, Slurm) it prints plain lines instead, one per metrics
update and at most one a second. The trainer creates it with ``enabled=False`` on every rank but 0.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

REFRESH_INTERVAL_S = 0.1
"""Shortest time between two redraws of the bar (10 Hz)."""

PLAIN_INTERVAL_S = 1.0
"""Shortest time between two plain log lines."""


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``loss 2.314 | lr 0.0003`` — four significant digits, names in the order given."""
    parts = []
    for name, value in metrics.items():
        item = getattr(value, "item", None)
        number = item() if callable(item) else value
        parts.append(f"{name} {number:.4g}" if isinstance(number, float) else f"{name} {number}")
    return " | ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Shows training progress: ``update(step, metrics)`` after each step, ``close()`` at the end.

    ``step`` is the number of steps done so far (absolute, so a resumed run starts where it left
    off). ``file`` defaults to stdout; ``force_terminal`` overrides the TTY check.
    """

    def __init__(
        self,
        total: int | None,
        enabled: bool = True,
        *,
        description: str = "train",
        file: IO[str] | None = None,
        force_terminal: bool | None = None,
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.description = description
        self._file = file
        self._metrics = ""
        self._last_draw = 0.0
        self._last_step: int | None = None
        self._printed_step: int | None = None
        self._start = time.perf_counter()
        self._first_step: int | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if not enabled:
            return
        stream = file if file is not None else sys.stdout
        self._terminal = (
            force_terminal if force_terminal is not None else bool(getattr(stream, "isatty", bool)())
        )
        if self._terminal:
            self._start_rich(stream)

    def _start_rich(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=stream, force_terminal=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(self.description, total=self.total, metrics="", speed="")
        self._progress.start()

    def update(self, step: int, metrics: Mapping[str, Any] | None = None) -> None:
        """Record that ``step`` steps are done; redraw (or print) only if enough time passed."""
        if not self.enabled:
            return
        if self._first_step is None:
            self._first_step = step
            self._start = time.perf_counter()
        self._last_step = step
        if metrics:
            self._metrics = format_metrics(metrics)
        now = time.perf_counter()
        if self._progress is not None:
            if now - self._last_draw >= REFRESH_INTERVAL_S or step == self.total:
                self._draw(step, now)
        elif metrics and (now - self._last_draw >= PLAIN_INTERVAL_S or step == self.total):
            self._print_line(step, now)

    def _rate(self, step: int, now: float) -> float | None:
        done = step - (self._first_step or 0)
        elapsed = now - self._start
        return done / elapsed if done > 0 and elapsed > 0 else None

    def _draw(self, step: int, now: float) -> None:
        assert self._progress is not None and self._task is not None
        rate = self._rate(step, now)
        speed = f"{rate:.2f} it/s" if rate is not None else ""
        self._progress.update(self._task, completed=step, metrics=self._metrics, speed=speed)
        self._progress.refresh()
        self._last_draw = now

    def _print_line(self, step: int, now: float) -> None:
        parts = [f"{self.description} step {step}" + (f"/{self.total}" if self.total else "")]
        if self._metrics:
            parts.append(self._metrics)
        rate = self._rate(step, now)
        if rate is not None:
            parts.append(f"{rate:.2f} it/s")
            if self.total:
                parts.append(f"eta {_duration(max(self.total - step, 0) / rate)}")
        stream = self._file if self._file is not None else sys.stdout
        print(" | ".join(parts), file=stream, flush=True)
        self._last_draw = now
        self._printed_step = step

    def close(self) -> None:
        """Draw the final state and release the terminal."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._progress is not None:
            if self._last_step is not None:
                self._draw(self._last_step, now)
            self._progress.stop()
            self._progress = None
        elif self._last_step is not None and self._printed_step != self._last_step:
            self._print_line(self._last_step, now)
        self.enabled = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
