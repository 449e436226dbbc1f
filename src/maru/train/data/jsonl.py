"""JSON Lines as a source: a byte-offset index built once, then one ``pread`` per sample."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maru.errors import LoaderError

from ._files import PathLike, PerProcessHandles, locate, source_files

if TYPE_CHECKING:
    import numpy as np


class JsonlSource:
    """One JSON object per line, in one ``.jsonl`` file or a folder of them.

    Opening scans the file(s) once for newlines (in large binary chunks) and keeps the byte offset
    and length of every non-empty line in memory; a sample is then one ``pread`` and one
    ``json.loads``. ``fields`` keeps only those keys (a missing one is an error naming the record).
    """

    _CHUNK = 1 << 24

    def __init__(self, path: PathLike, fields: Sequence[str] | None = None):
        self.files = source_files(path, (".jsonl", ".json", ".ndjson"), "JSONL")
        self.fields = list(fields) if fields is not None else None
        self._starts: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._cumulative = [0]
        for file in self.files:
            starts, lengths = self._scan(file)
            self._starts.append(starts)
            self._lengths.append(lengths)
            self._cumulative.append(self._cumulative[-1] + len(starts))
        self._handles = PerProcessHandles()

    @classmethod
    def _scan(cls, file: Path) -> tuple[np.ndarray, np.ndarray]:
        """Byte offsets and lengths (without the newline) of the file's non-blank lines."""
        import numpy as np

        ends_parts = []
        size = 0
        with file.open("rb") as f:
            while chunk := f.read(cls._CHUNK):
                buf = np.frombuffer(chunk, dtype=np.uint8)
                ends_parts.append(np.flatnonzero(buf == 10) + size)
                size += len(chunk)
            last = b""
            if size:
                f.seek(size - 1)
                last = f.read(1)
        ends = np.concatenate(ends_parts) if ends_parts else np.zeros(0, dtype=np.int64)
        if size and last != b"\n":
            ends = np.append(ends, size)
        starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else ends
        lengths = ends - starts
        keep = lengths > 0
        return starts[keep].astype(np.int64), lengths[keep].astype(np.int64)

    def __len__(self) -> int:
        return self._cumulative[-1]

    def __getitem__(self, index: int) -> Any:
        k, j = locate(self._cumulative, index, "records")
        start, length = int(self._starts[k][j]), int(self._lengths[k][j])
        fd = self._handles.get(k, lambda: os.open(self.files[k], os.O_RDONLY))
        raw = os.pread(fd, length, start)
        try:
            record = json.loads(raw)
        except ValueError as exc:
            if not raw.strip():
                raise LoaderError(
                    f"{self.files[k]}: record {j} (byte {start}) is only whitespace; remove blank "
                    "lines from the file"
                ) from exc
            raise LoaderError(
                f"{self.files[k]}: record {j} (byte {start}) is not valid JSON: {exc}"
            ) from exc
        if self.fields is None:
            return record
        if not isinstance(record, dict):
            raise LoaderError(f"{self.files[k]}: record {j} is not a JSON object, cannot pick fields")
        try:
            return {name: record[name] for name in self.fields}
        except KeyError as exc:
            raise LoaderError(
                f"{self.files[k]}: record {j} (byte {start}) has no field {exc.args[0]!r}; "
                f"it has {sorted(record)}"
            ) from exc

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        return [self[i] for i in indices]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = PerProcessHandles()
        return state

    def __del__(self) -> None:
        handles = getattr(self, "_handles", None)
        if handles is not None:
            handles.close(os.close)
