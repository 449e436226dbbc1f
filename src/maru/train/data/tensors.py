"""Tensors as a source: in memory, ``.pt`` (``torch.load(mmap=True)``) or ``.safetensors``
(memory-mapped by hand, so every rank on a machine shares one copy in the page cache)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maru.errors import LoaderError

from ._files import PathLike

if TYPE_CHECKING:
    import torch


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
