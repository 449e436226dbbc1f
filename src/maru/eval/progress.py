"""A one-line progress bar on stderr, drawn only when stderr is a terminal (quiet in CI, in pipes and
in tests), so an experiment's output stays clean wherever it is captured."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]

_WIDTH = 24


class ProgressBar:
    """``update(done)`` redraws ``label  ███░░░  done/total  eta``; ``close()`` ends the line."""

    def __init__(self, label: str, total: int, done: int = 0, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.total, self.start_done = label, max(total, 1), done
        self.started = time.monotonic()
        self.update(done)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        filled = round(_WIDTH * done / self.total)
        rate = (done - self.start_done) / max(time.monotonic() - self.started, 1e-9)
        eta = f"  eta {(self.total - done) / rate:.0f}s" if rate > 0 and done < self.total else ""
        self.stream.write(f"\r{self.label}  {'█' * filled}{'░' * (_WIDTH - filled)}  {done}/{self.total}{eta}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
