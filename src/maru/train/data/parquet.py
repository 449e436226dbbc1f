"""Parquet as a source: footers read at opening, row groups read lazily and the last few cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from maru.errors import LoaderError

from ._files import PathLike, PerProcessHandles, locate, source_files


class ParquetSource:
    """Rows of one ``.parquet`` file or a folder of them; a sample is a dict ``column -> value``.

    Only the footers are read at opening. A row group is read (just ``columns``) the first time one
    of its rows is asked for and kept in a small LRU cache of ``cache_row_groups`` groups; numeric
    columns without nulls are kept as numpy arrays, others as Python lists. Shuffled reads jump
    between row groups, so write files with row groups of a few thousand rows for random access.
    """

    def __init__(
        self, path: PathLike, columns: Sequence[str] | None = None, *, cache_row_groups: int = 8
    ):
        import pyarrow.parquet as pq

        self.files = source_files(path, (".parquet", ".pq"), "Parquet")
        self.cache_row_groups = max(1, cache_row_groups)
        self._groups: list[tuple[int, int]] = []  # (file index, row group index)
        self._cumulative = [0]
        schema_names: list[str] | None = None
        for k, file in enumerate(self.files):
            try:
                parquet = pq.ParquetFile(file)
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError
                raise LoaderError(f"{file} is not a readable Parquet file: {exc}") from exc
            meta = parquet.metadata
            schema_names = schema_names or list(parquet.schema_arrow.names)
            for g in range(meta.num_row_groups):
                self._groups.append((k, g))
                self._cumulative.append(self._cumulative[-1] + meta.row_group(g).num_rows)
        self.columns = list(columns) if columns is not None else list(schema_names or [])
        missing = [c for c in self.columns if c not in (schema_names or [])]
        if missing:
            raise LoaderError(
                f"Parquet source {str(path)!r} has no column(s) {missing}; it has {schema_names}"
            )
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._handles = PerProcessHandles()

    def __len__(self) -> int:
        return self._cumulative[-1]

    def _group(self, g: int) -> dict[str, Any]:
        with self._lock:
            cached = self._cache.get(g)
            if cached is not None:
                self._cache.move_to_end(g)
                return cached
        import pyarrow as pa
        import pyarrow.parquet as pq

        k, rg = self._groups[g]
        file = self._handles.get(k, lambda: pq.ParquetFile(self.files[k]))
        table = file.read_row_group(rg, columns=self.columns)
        values: dict[str, Any] = {}
        for name in self.columns:
            column = table.column(name)
            kind = column.type
            plain = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            values[name] = column.to_numpy() if plain and column.null_count == 0 else column.to_pylist()
        with self._lock:
            self._cache[g] = values
            while len(self._cache) > self.cache_row_groups:
                self._cache.popitem(last=False)
        return values

    def __getitem__(self, index: int) -> dict[str, Any]:
        g, j = locate(self._cumulative, index, "rows")
        values = self._group(g)
        return {name: column[j] for name, column in values.items()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self[i] for i in indices]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = PerProcessHandles()
        state["_lock"] = None
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
