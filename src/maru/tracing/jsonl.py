"""``JSONLSink``: one JSON object per run, one run per line, appended to a file.

A trace is written with one ``write(2)`` call on a file opened with ``O_APPEND``, so threads and
processes appending to the same file do not interleave their lines, and nothing waits in a
user-space buffer: what ``write`` returned is in the file (``fsync=True`` also makes it durable
against power loss). A process that crashed mid-write leaves a partial last line; the next
``JSONLSink`` on the file ends that line first, and :func:`read_jsonl` skips it with a warning.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .run import Run

__all__ = ["JSONLSink", "read_jsonl"]

# A lock held by another thread at fork time would stay held forever in the child: give every
# sink a new one there.
_sinks: weakref.WeakSet[JSONLSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_sinks):
        sink._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class JSONLSink:
    """Append each run of each trace to ``path`` as a line of JSON (``Run.to_dict()``); parent
    folders are created. Thread- and process-safe; read it back with :func:`read_jsonl`."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._end_partial_line()
        _sinks.add(self)

    def _end_partial_line(self) -> None:
        """A file that does not end in a newline was cut short by a crash: end that line, so the
        next record starts on its own line instead of being glued to the broken one."""
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
        assert self._fd is not None
        os.write(self._fd, b"\n")

    def write(self, runs: list[Run]) -> None:
        if not runs:
            return
        data = "".join(_line(run) for run in runs).encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise ValueError(f"JSONLSink({str(self.path)!r}) is closed")
            view = memoryview(data)
            while view:  # a regular file takes it all at once; the loop is for the odd short write
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)

    def flush(self) -> None:
        """Every ``write`` is already in the file; with ``fsync=True`` it is also on disk."""
        with self._lock:
            if self._fd is not None and self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)

    def __enter__(self) -> JSONLSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JSONLSink({str(self.path)!r})"


def _line(run: Run) -> str:
    return json.dumps(run.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Run]:
    """The runs in a file written by :class:`JSONLSink`, in file order. A line that is not a
    complete run (a crash cut it short) is skipped with a ``RuntimeWarning`` naming the line."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            complete = line.endswith("\n")
            try:
                data: Any = json.loads(line)
                run = Run.from_dict(data)
            except (ValueError, TypeError, AttributeError) as exc:
                what = "its last line is" if not complete else f"line {number} is"
                cause = "cut short (a crash while writing?)" if not complete else f"not a run ({exc})"
                warnings.warn(f"{path}: {what} {cause}; skipped it", RuntimeWarning, stacklevel=2)
                continue
            yield run
