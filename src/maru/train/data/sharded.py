"""Training data: one shared source that every rank opens, split deterministically, resumable.

There is no pre-splitting of files per rank. Every rank opens the same file (or folder) as a
*source* — a map-style object with ``__len__`` and ``__getitem__`` — and :class:`ShardedDataset`
decides, from ``(seed, epoch)`` alone, which samples each rank reads. So any rank can be restarted
on any machine, and a resumed run reads what the uninterrupted run would have read.

Sources: :class:`TensorSource` (``.pt`` / ``.safetensors`` / in-memory tensors, memory-mapped),
:class:`JsonlSource` (a byte-offset index, one ``pread`` per sample), :class:`ParquetSource` (row
groups read lazily, the last few cached) and :class:`IdxSource` (MNIST-style IDX files,
memory-mapped, ``.gz`` too).

How an epoch is split (``B`` = batch size, ``W`` = world size): the epoch's order is
``torch.randperm(n)`` from a generator seeded with ``(seed, epoch)``. Step ``k`` takes the next
``B * W`` samples of that order and rank ``r`` takes its ``B`` contiguous ones. So every rank
computes the same order, the union over ranks is each sample once, and every rank has the same
number of batches (a rank with fewer batches would leave the others hanging in a collective).
A final short step is dropped (``drop_last=True``) or padded by wrapping round to the start of the
order, giving each rank an equal, smaller last batch (``drop_last=False``).

Resuming: the position is kept in *global* terms — the number of samples of this epoch's order
that all ranks together have consumed. A restart with the same world size continues exactly;
one with another world size (an elastic restart) splits the rest of the epoch's order across the
new ranks the same way, so nothing is read twice and nothing is skipped (except a new short tail,
which ``drop_last`` treats as above).
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import json
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from maru.errors import LoaderError, TrainError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "IdxSource",
    "JsonlSource",
    "ParquetSource",
    "ShardedDataset",
    "Source",
    "TensorSource",
    "default_collate",
    "read_idx",
    "write_idx",
]

PathLike = str | os.PathLike[str]


class Source(Protocol):
    """What :class:`ShardedDataset` reads: a map-style collection of samples.

    A source may also offer ``__getitems__(indices) -> list[sample]`` (one read for a batch, the
    convention torch's ``DataLoader`` uses) and ``read_batch(index_tensor) -> batch`` (an already
    collated batch in one indexing operation, used when no custom ``collate`` is given).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


# ---------------------------------------------------------------------------------------------
# collate


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tensors and numpy arrays are stacked; numbers become one tensor; dicts are collated key by key;
    tuples element by element; lists of numbers (say token ids of equal length) become a tensor;
    strings, ragged lists and anything else stay a list.
    """
    import numpy as np
    import torch

    if not samples:
        raise TrainError("cannot collate an empty batch; check the batch size and the source length")
    first = samples[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(list(samples))
    if isinstance(first, np.ndarray | np.generic):
        return torch.as_tensor(np.stack(samples))
    if isinstance(first, bool | int | float):
        return torch.tensor(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, tuple):
        columns = [default_collate(list(col)) for col in zip(*samples, strict=True)]
        return type(first)(*columns) if hasattr(first, "_fields") else tuple(columns)
    if isinstance(first, list):
        try:
            return torch.tensor(samples)
        except (TypeError, ValueError, RuntimeError):
            return list(samples)
    return list(samples)


# ---------------------------------------------------------------------------------------------
# file helpers


def _files(path: PathLike, suffixes: tuple[str, ...], what: str) -> list[Path]:
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


class _PerProcessHandles:
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


# ---------------------------------------------------------------------------------------------
# tensors


_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def _mmap_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file as views of one memory map (no copy, no full read)."""
    import numpy as np
    import torch

    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        # copy-on-write: writable (torch wants that) yet never written back; pages stay shared
        buffer = torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="c"))
    except (OSError, ValueError, struct.error) as exc:
        raise LoaderError(f"{path} is not a readable .safetensors file: {exc}") from exc
    base = 8 + header_len
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype_name = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype_name is None:
            raise LoaderError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        dtype = getattr(torch, dtype_name)
        begin, end = info["data_offsets"]
        raw = buffer[base + begin : base + end]
        try:
            tensor = raw.view(dtype)
        except RuntimeError:  # misaligned for this dtype: copy just this tensor
            tensor = raw.clone().view(dtype)
        out[name] = tensor.reshape(info["shape"])
    return out


def _load_tensor_file(path: Path, mmap: bool) -> Any:
    import torch

    if not path.is_file():
        raise LoaderError(f"tensor source {str(path)!r} does not exist; pass a .pt or .safetensors file")
    if path.suffix == ".safetensors":
        return _mmap_safetensors(path) if mmap else _safetensors_load(path)
    try:
        return torch.load(path, mmap=mmap, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError, pickle errors, zipfile errors …
        raise LoaderError(
            f"{path} could not be loaded as tensors ({type(exc).__name__}: {exc}); save it with "
            "torch.save(dict_or_tuple_of_tensors) or as .safetensors"
        ) from exc


def _safetensors_load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


class TensorSource:
    """Samples are rows of equal-length tensors: a dict of tensors (samples are dicts), a tuple or
    list (samples are tuples) or one tensor (samples are tensors).

    ``data`` is such a structure or the path of a ``.pt`` file holding one (loaded with
    ``torch.load(mmap=True)``) or of a ``.safetensors`` file (memory-mapped, samples are dicts).
    Memory mapping means every rank on a machine shares one copy of the data in the page cache.
    """

    def __init__(self, data: PathLike | Mapping[str, Any] | Sequence[Any] | Any, *, mmap: bool = True):
        import torch

        what = str(data) if isinstance(data, str | os.PathLike) else type(data).__name__
        if isinstance(data, str | os.PathLike):
            data = _load_tensor_file(Path(data), mmap)
        self._keys: list[str] | None = None
        self._single = False
        if isinstance(data, torch.Tensor):
            tensors, self._single = [data], True
        elif isinstance(data, Mapping):
            self._keys = [str(k) for k in data]
            tensors = list(data.values())
        elif isinstance(data, tuple | list):
            tensors = list(data)
        else:
            raise LoaderError(
                f"tensor source {what}: expected a tensor, a dict, tuple or list of tensors, "
                f"got {type(data).__name__}"
            )
        if not tensors:
            raise LoaderError(f"tensor source {what} holds no tensors")
        names = self._keys or [str(i) for i in range(len(tensors))]
        for name, tensor in zip(names, tensors, strict=True):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0:
                raise LoaderError(
                    f"tensor source {what}: entry {name!r} is not a tensor with a first (sample) "
                    f"dimension ({type(tensor).__name__})"
                )
        lengths = {name: int(t.shape[0]) for name, t in zip(names, tensors, strict=True)}
        if len(set(lengths.values())) > 1:
            raise LoaderError(
                f"tensor source {what}: tensors have different lengths {lengths}; every tensor "
                "must hold one row per sample"
            )
        self._tensors: list[torch.Tensor] = tensors
        self._len = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._len

    def _pack(self, values: list[Any]) -> Any:
        if self._single:
            return values[0]
        if self._keys is not None:
            return dict(zip(self._keys, values, strict=True))
        return tuple(values)

    def __getitem__(self, index: int) -> Any:
        return self._pack([t[index] for t in self._tensors])

    def read_batch(self, indices: torch.Tensor) -> Any:
        """The collated batch of ``indices``: one gather per tensor."""
        return self._pack([t[indices] for t in self._tensors])

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        import torch

        columns = [t[torch.as_tensor(indices, dtype=torch.long)] for t in self._tensors]
        return [self._pack(list(row)) for row in zip(*columns, strict=True)]


# ---------------------------------------------------------------------------------------------
# JSONL


class JsonlSource:
    """One JSON object per line, in one ``.jsonl`` file or a folder of them.

    Opening scans the file(s) once for newlines (in large binary chunks) and keeps the byte offset
    and length of every non-empty line in memory; a sample is then one ``pread`` and one
    ``json.loads``. ``fields`` keeps only those keys (a missing one is an error naming the record).
    """

    _CHUNK = 1 << 24

    def __init__(self, path: PathLike, fields: Sequence[str] | None = None):
        self.files = _files(path, (".jsonl", ".json", ".ndjson"), "JSONL")
        self.fields = list(fields) if fields is not None else None
        self._starts: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._cumulative = [0]
        for file in self.files:
            starts, lengths = self._scan(file)
            self._starts.append(starts)
            self._lengths.append(lengths)
            self._cumulative.append(self._cumulative[-1] + len(starts))
        self._handles = _PerProcessHandles()

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
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} records")
        k = bisect.bisect_right(self._cumulative, index) - 1
        j = index - self._cumulative[k]
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
        state["_handles"] = _PerProcessHandles()
        return state

    def __del__(self) -> None:
        handles = getattr(self, "_handles", None)
        if handles is not None:
            handles.close(os.close)


# ---------------------------------------------------------------------------------------------
# Parquet


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

        self.files = _files(path, (".parquet", ".pq"), "Parquet")
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
        self._handles = _PerProcessHandles()

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
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} rows")
        g = bisect.bisect_right(self._cumulative, index) - 1
        values = self._group(g)
        j = index - self._cumulative[g]
        return {name: column[j] for name, column in values.items()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self[i] for i in indices]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = _PerProcessHandles()
        state["_lock"] = None
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


# ---------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)


_IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_KINDS = {("u", 1): 0x08, ("i", 1): 0x09, ("i", 2): 0x0B, ("i", 4): 0x0C, ("f", 4): 0x0D, ("f", 8): 0x0E}


def read_idx(path: PathLike) -> np.ndarray:
    """The array in an IDX file (``.gz`` allowed): memory-mapped when uncompressed.

    Format: two zero bytes, a dtype code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float,
    0x0E double), the number of dimensions, then each dimension as a big-endian uint32, then the
    data, big-endian, row-major.
    """
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise LoaderError(f"IDX file {str(p)!r} does not exist; pass the path of an IDX file (.gz allowed)")
    compressed = p.suffix == ".gz"
    try:
        with gzip.open(p, "rb") if compressed else p.open("rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_CODES:
                raise LoaderError(
                    f"{p} is not an IDX file: bad magic number {head.hex() or '(empty)'}; expected "
                    "00 00 <dtype code 08/09/0B/0C/0D/0E> <ndim>"
                )
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise LoaderError(f"{p} is truncated: its header announces {ndim} dimensions")
            shape = struct.unpack(f">{ndim}I", dims_raw)
            dtype = np.dtype(_IDX_CODES[head[2]])
            count = math.prod(shape)
            offset = 4 + 4 * ndim
            if compressed:
                data = f.read()
                if len(data) < count * dtype.itemsize:
                    raise LoaderError(
                        f"{p} is truncated: expected {count * dtype.itemsize} data bytes for shape "
                        f"{shape}, found {len(data)}"
                    )
                return np.frombuffer(data, dtype=dtype, count=count).reshape(shape)
    except (OSError, EOFError) as exc:
        raise LoaderError(f"{p} could not be read as IDX: {exc}") from exc
    size = p.stat().st_size
    if size < offset + count * dtype.itemsize:
        raise LoaderError(
            f"{p} is truncated: expected {offset + count * dtype.itemsize} bytes for shape {shape}, "
            f"found {size}"
        )
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape)


def write_idx(path: PathLike, array: Any) -> Path:
    """Write ``array`` (numpy or tensor) as an IDX file; gzip-compressed when ``path`` ends in .gz."""
    import numpy as np

    arr = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
    code = _IDX_KINDS.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise LoaderError(
            f"IDX cannot hold dtype {arr.dtype}; use uint8, int8, int16, int32, float32 or float64"
        )
    if arr.ndim == 0 or arr.ndim > 255:
        raise LoaderError(f"IDX needs 1 to 255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">"), copy=False).tobytes()
    p = Path(path)
    p.write_bytes(gzip.compress(payload) if p.suffix == ".gz" else payload)
    return p


class IdxSource:
    """MNIST-style data: an IDX images file and optionally an IDX labels file.

    Samples are ``(image, label)`` tuples (or just the image without labels). With ``normalize``,
    uint8 images become float32 in [0, 1] and other types float32 as stored; labels are int64.
    Uncompressed files are memory-mapped, ``.gz`` files read into memory once.
    """

    def __init__(
        self, images_path: PathLike, labels_path: PathLike | None = None, *, normalize: bool = True
    ):
        self._images = read_idx(images_path)
        self._labels = read_idx(labels_path) if labels_path is not None else None
        self.normalize = normalize
        if self._labels is not None and len(self._labels) != len(self._images):
            raise LoaderError(
                f"IDX images {images_path} hold {len(self._images)} samples but labels "
                f"{labels_path} hold {len(self._labels)}; pass the matching pair of files"
            )

    def __len__(self) -> int:
        return len(self._images)

    def _tensor(self, arr: np.ndarray, labels: bool) -> torch.Tensor:
        import numpy as np
        import torch

        native = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        tensor = torch.from_numpy(native)
        if labels:
            return tensor.long()
        if not self.normalize:
            return tensor
        if native.dtype == np.uint8:
            return tensor.float().div_(255.0)
        return tensor.float()

    def read_batch(self, indices: torch.Tensor) -> Any:
        """The collated batch of ``indices``: one fancy-indexing read per file."""
        idx = indices.numpy()
        images = self._tensor(self._images[idx], labels=False)
        if self._labels is None:
            return images
        return images, self._tensor(self._labels[idx], labels=True)

    def __getitem__(self, index: int) -> Any:
        import torch

        batch = self.read_batch(torch.tensor([index]))
        return batch[0] if self._labels is None else (batch[0][0], batch[1][0])

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        import torch

        batch = self.read_batch(torch.as_tensor(indices, dtype=torch.long))
        if self._labels is None:
            return list(batch)
        return list(zip(batch[0], batch[1], strict=True))


# ---------------------------------------------------------------------------------------------
# the dataset


def _epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit generator seed per ``(seed, epoch)``; nearby pairs give unrelated seeds."""
    digest = hashlib.blake2b(f"maru:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ShardedDataset:
    """Batches for this rank from a shared source, in a deterministic, resumable order.

    Iterating yields the collated batches from the current position to the end of the epoch and
    advances the position as each batch is handed out: a :meth:`state_dict` taken after the k-th
    batch was consumed resumes at batch k+1. When an iteration runs to the end of the epoch the
    position moves to the start of the next epoch (so a loop without :meth:`set_epoch` still
    reshuffles). Use one iterator at a time.

    ``collate`` turns a list of samples into a batch (default :func:`default_collate`). Without
    one, sources that offer ``read_batch`` (tensors, IDX) build the batch in one indexing read.
    """

    def __init__(
        self,
        source: Source,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        collate: Callable[[list[Any]], Any] | None = None,
    ):
        if batch_size < 1:
            raise TrainError(f"batch_size must be at least 1, got {batch_size}")
        self.source = source
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.collate = collate
        self._n = len(source)
        self._rank: int | None = None
        self._world: int | None = None
        self._epoch = 0
        self._start = 0  # position in the epoch's order where the current split begins
        self._step = 0  # steps taken since _start
        self._steps_before = 0  # steps taken this epoch before _start (kept across a re-split)
        self._order: torch.Tensor | None = None
        self._order_epoch = -1
        self._version = 0  # bumped when the position is set from outside; stops a live iterator
        read_batch = getattr(source, "read_batch", None)
        self._read_batch = read_batch if collate is None and callable(read_batch) else None
        getitems = getattr(source, "__getitems__", None)
        self._getitems = getitems if callable(getitems) else None

    # -- placement ---------------------------------------------------------------------------

    def shard(self, rank: int, world_size: int) -> None:
        """Read as data-parallel rank ``rank`` of ``world_size`` (the trainer calls this).

        Calling it mid-epoch with another world size re-splits the rest of the epoch.
        """
        if world_size < 1 or not 0 <= rank < world_size:
            raise TrainError(f"bad shard: rank {rank} of world size {world_size}")
        if self._world is not None and world_size != self._world:
            self._resplit_at(self._consumed())
        self._rank, self._world = int(rank), int(world_size)
        self._version += 1

    def _placement(self) -> tuple[int, int]:
        if self._world is None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                self._rank, self._world = dist.get_rank(), dist.get_world_size()
            else:
                self._rank, self._world = 0, 1
        assert self._rank is not None
        return self._rank, self._world

    @property
    def rank(self) -> int:
        return self._placement()[0]

    @property
    def world_size(self) -> int:
        return self._placement()[1]

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch``; the current epoch again keeps its position (so a resumed
        run that calls ``set_epoch(resumed_epoch)`` continues mid-epoch)."""
        if epoch != self._epoch:
            self._epoch = int(epoch)
            self._start = self._step = self._steps_before = 0
            self._version += 1

    # -- layout --------------------------------------------------------------------------------

    def _steps_from(self, start: int) -> int:
        remaining = self._n - start
        per_step = self.batch_size * self.world_size
        if remaining <= 0:
            return 0
        return remaining // per_step if self.drop_last else -(-remaining // per_step)

    def __len__(self) -> int:
        """Batches per epoch for this rank (the same on every rank)."""
        return self._steps_from(0)

    @property
    def remaining(self) -> int:
        """Batches left in the current epoch for this rank."""
        return max(0, self._steps_from(self._start) - self._step)

    def _epoch_order(self) -> torch.Tensor:
        import torch

        if self._order is None or self._order_epoch != self._epoch:
            if self.shuffle:
                generator = torch.Generator()
                generator.manual_seed(_epoch_seed(self.seed, self._epoch))
                self._order = torch.randperm(self._n, generator=generator)
            else:
                self._order = torch.arange(self._n)
            self._order_epoch = self._epoch
        return self._order

    def _rank_indices(self, order: torch.Tensor, step: int) -> torch.Tensor:
        """Sample indices of this rank's batch at ``step`` (counted from ``_start``)."""
        import torch

        rank, world = self._placement()
        per_step = self.batch_size * world
        lo = self._start + step * per_step
        hi = min(lo + per_step, self._n)
        if hi - lo == per_step:
            return order[lo + rank * self.batch_size : lo + (rank + 1) * self.batch_size]
        # short final step (drop_last=False): equal smaller batches, padded by wrapping round
        size = -(-(hi - lo) // world)
        positions = torch.arange(lo + rank * size, lo + (rank + 1) * size)
        wrapped = torch.where(positions < hi, positions, (positions - hi) % self._n)
        return order[wrapped]

    def _consumed(self) -> int:
        if self._world is None:
            return self._start
        return min(self._n, self._start + self._step * self.batch_size * self._world)

    def _resplit_at(self, consumed: int) -> None:
        self._steps_before += self._step
        self._start, self._step = consumed, 0

    # -- iteration -----------------------------------------------------------------------------

    def _read(self, indices: torch.Tensor) -> Any:
        if self._read_batch is not None:
            return self._read_batch(indices)
        ids = indices.tolist()
        samples = self._getitems(ids) if self._getitems is not None else [self.source[i] for i in ids]
        return (self.collate or default_collate)(samples)

    def __iter__(self) -> Iterator[Any]:
        if self._n == 0:
            raise TrainError("the data source is empty; check its path and contents")
        if len(self) == 0:
            raise TrainError(
                f"the source has {self._n} samples, fewer than batch_size * world_size = "
                f"{self.batch_size * self.world_size}: an epoch would have no batch; use a smaller "
                "batch size or drop_last=False"
            )
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        version = self._version
        order = self._epoch_order()
        steps = self._steps_from(self._start)
        while self._step < steps:
            indices = self._rank_indices(order, self._step)
            self._step += 1
            yield self._read(indices)
            if self._version != version:  # set_epoch / load_state_dict / shard while iterating
                return
        self._epoch += 1
        self._start = self._step = self._steps_before = 0
        self._version += 1

    # -- resuming ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The position: ``epoch``, ``offset`` (steps taken this epoch; each step is one batch on
        every rank), ``consumed`` (samples of the epoch's order consumed by all ranks together)
        and what must match to resume (``seed``, ``world_size``, ``batch_size``, ``len`` …)."""
        return {
            "epoch": self._epoch,
            "offset": self._steps_before + self._step,
            "consumed": self._consumed(),
            "seed": self.seed,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "len": self._n,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved position.

        The source length, batch size, seed, shuffle and drop_last must match (otherwise the saved
        position means other samples: :class:`~maru.errors.TrainError`). A different world size
        is allowed: the samples of the epoch's order not yet consumed by the old ranks are split
        across the new ranks as described in the module docstring, so the rest of the epoch is read
        once, without repeats. Call :meth:`shard` before this if the rank is not taken from
        ``torch.distributed``.
        """
        missing = [k for k in ("epoch", "offset", "batch_size", "len") if k not in state]
        if missing:
            raise TrainError(f"data position lacks {missing}; pass what state_dict() returned")
        checks = {
            "len": (int(state["len"]), self._n, "source length"),
            "batch_size": (int(state["batch_size"]), self.batch_size, "batch size"),
            "seed": (state.get("seed", self.seed), self.seed, "seed"),
            "shuffle": (state.get("shuffle", self.shuffle), self.shuffle, "shuffle"),
            "drop_last": (state.get("drop_last", self.drop_last), self.drop_last, "drop_last"),
        }
        for saved, current, what in checks.values():
            if saved != current:
                raise TrainError(
                    f"cannot resume the data position: it was saved with {what} {saved!r}, this "
                    f"dataset has {current!r}; resume with the same data settings, or start the "
                    "data from scratch (do not load its state)"
                )
        old_world = int(state.get("world_size", self.world_size))
        consumed = state.get("consumed")
        if consumed is None:
            consumed = min(self._n, int(state["offset"]) * self.batch_size * old_world)
        self._placement()
        self._epoch = int(state["epoch"])
        self._start, self._step = int(consumed), 0
        self._steps_before = int(state["offset"])
        self._version += 1

    def __repr__(self) -> str:
        return (
            f"ShardedDataset({type(self.source).__name__}, n={self._n}, batch_size={self.batch_size}, "
            f"rank={self._rank}, world_size={self._world}, epoch={self._epoch}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
