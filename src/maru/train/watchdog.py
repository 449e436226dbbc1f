"""Hang watchdog: a daemon thread in each worker that notices when training stops making step
progress, dumps every thread's stack and kills the worker, so torchrun's agent restarts the group
(from the latest checkpoint) instead of the job hanging until a collective times out.

The training loop reports progress with one attribute store per step (``heartbeat.step = step``,
or :meth:`Watchdog.beat`); the thread wakes up a few times per timeout and compares. When the step
has not changed for ``timeout_s`` seconds it writes a header and
``faulthandler.dump_traceback(all_threads=True)`` to stderr (the rank's log under torchrun) and to
``<dump_dir>/hang_rank<r>_attempt<a>.txt``, records a ``HangError`` in the torchelastic error file
(so the job's root-cause summary names the hang), then ``os._exit(HANG_EXIT_CODE)``. Ranks blocked
in a collective with the hung one either fire their own watchdog or are torn down by the agent.

Configured by ``MARU_HANG_TIMEOUT_S`` (the job spec's ``hang_timeout_s``; the local backend sets it)
or ``Trainer(hang_timeout_s=...)``; ``MARU_HANG_DUMP_DIR`` (or ``MARU_JOB_DIR``) names where dump
files go. Loading a checkpoint and validating count as "no progress": keep the timeout above them.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from ..errors import ConfigurationError

__all__ = [
    "HANG_EXIT_CODE",
    "Heartbeat",
    "Watchdog",
    "timeout_from_env",
]

HANG_EXIT_CODE = 124
"""Exit code of a worker the watchdog killed (as ``timeout(1)`` uses)."""

ENV_TIMEOUT = "MARU_HANG_TIMEOUT_S"
ENV_DUMP_DIR = "MARU_HANG_DUMP_DIR"


class Heartbeat:
    """The shared progress counter: the loop stores the step, the watchdog thread reads it."""

    __slots__ = ("step",)

    def __init__(self) -> None:
        self.step = -1


def timeout_from_env() -> float | None:
    """``MARU_HANG_TIMEOUT_S`` as seconds; ``None`` when unset, empty or ``0`` (off)."""
    raw = os.environ.get(ENV_TIMEOUT, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{ENV_TIMEOUT}={raw!r} is not a number of seconds; set it to e.g. 600, or 0 for off"
        ) from None
    return value if value > 0 else None


class Watchdog:
    """Kill this process with stack dumps when ``heartbeat.step`` stops changing for
    ``timeout_s`` seconds. ``exit_code=None`` only dumps (and keeps watching) — for tests."""

    def __init__(
        self,
        timeout_s: float,
        heartbeat: Heartbeat | None = None,
        *,
        dump_dir: str | os.PathLike[str] | None = None,
        exit_code: int | None = HANG_EXIT_CODE,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigurationError(f"hang timeout must be positive seconds, not {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.heartbeat = heartbeat or Heartbeat()
        folder = dump_dir or os.environ.get(ENV_DUMP_DIR) or os.environ.get("MARU_JOB_DIR")
        self.dump_dir = Path(folder) if folder else None
        self.exit_code = exit_code
        self.fired: list[Path | None] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, step: int) -> None:
        """Report progress (one attribute store)."""
        self.heartbeat.step = step

    def start(self) -> Watchdog:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="maru-hang-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch(self) -> None:
        interval = min(1.0, self.timeout_s / 10)
        seen, since = self.heartbeat.step, time.monotonic()
        while not self._stop.wait(interval):
            step = self.heartbeat.step
            now = time.monotonic()
            if step != seen:
                seen, since = step, now
            elif now - since >= self.timeout_s:
                self._fire(step, now - since)
                seen, since = self.heartbeat.step, time.monotonic()

    def _fire(self, step: int, idle_s: float) -> None:
        rank = os.environ.get("RANK", "0")
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        header = (
            f"maru hang watchdog: rank {rank} made no step progress for {idle_s:.1f}s "
            f"(limit {self.timeout_s:g}s, last step {step}); stacks of all threads follow"
        )
        sys.stderr.write(f"\n{header}\n")
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        path: Path | None = None
        if self.dump_dir is not None:
            try:
                self.dump_dir.mkdir(parents=True, exist_ok=True)
                path = self.dump_dir / f"hang_rank{rank}_attempt{attempt}.txt"
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(header + "\n")
                    fh.flush()
                    faulthandler.dump_traceback(file=fh, all_threads=True)
            except OSError as exc:
                sys.stderr.write(f"maru hang watchdog: could not write the dump file: {exc}\n")
                path = None
        self.fired.append(path)
        if self.exit_code is None:
            return
        _write_error_file(header, path)
        os._exit(self.exit_code)


def _write_error_file(message: str, dump: Path | None) -> None:
    """Record the hang in torchelastic's error file, as ``record`` would for an exception."""
    target = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not target:
        return
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    frames = "".join(traceback.format_stack(frame)) if frame is not None else ""
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
    data = {
        "message": {
            "message": f"HangError: {message.split(';')[0]}",
            "extraInfo": {
                "py_callstack": frames,
                "timestamp": str(int(time.time())),
                "rank": os.environ.get("RANK", ""),
                "exc_type": "HangError",
                "where": where,
                "dump": str(dump) if dump else "",
            },
        }
    }
    try:
        with open(target, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    except OSError:
        pass
