"""IDX files (MNIST, Fashion-MNIST): read and write them, and read them as a source."""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maru.errors import LoaderError

from ._files import PathLike

if TYPE_CHECKING:
    import numpy as np
    import torch


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
