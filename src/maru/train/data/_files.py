"""What the file-backed sources share: where a source's files are, per-process handles (a forked
DataLoader worker must not share its parent's file offsets) and which file a sample is in."""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maru.errors import LoaderError

PathLike = str | os.PathLike[str]


def source_files(path: PathLike, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """``path`` itself, or the files in folder ``path`` ending in one of ``suffixes``, sorted."""
    p = Path(path)
    if not p.exists():
        raise LoaderError(f"{what} source {str(p)!r} does not exist; pass an existing file or folder")
    if p.is_file():
        return [p]
    found = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(suffixes))
    if not found:
        raise LoaderError(
            f"{what} source folder {str(p)!r} holds no {'/'.join(suffixes)} files; "
            "point it at a file or a folder of them"
        )
    return found


class PerProcessHandles:
    """Open file handles that are reopened in a forked child (a DataLoader worker, say)."""

    def __init__(self) -> None:
        self._pid = -1
        self._handles: dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: int, opener: Callable[[], Any]) -> Any:
        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()
        handle = self._handles.get(key)
        if handle is None:
            with self._lock:
                handle = self._handles.get(key)
                if handle is None:
                    handle = self._handles[key] = opener()
        return handle

    def close(self, closer: Callable[[Any], None]) -> None:
        if self._pid == os.getpid():
            for handle in self._handles.values():
                closer(handle)
        self._handles = {}


def locate(cumulative: Sequence[int], index: int, unit: str) -> tuple[int, int]:
    """``(part, position in part)`` of sample ``index`` (negative counts from the end) in parts
    whose running totals are ``cumulative`` (``[0, len(part 0), len(parts 0-1), ...]``)."""
    n = cumulative[-1]
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index {index} out of range for {n} {unit}")
    part = bisect.bisect_right(cumulative, index) - 1
    return part, index - cumulative[part]
