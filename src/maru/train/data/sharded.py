"""The sharded dataset: one shared source that every rank opens, split deterministically, resumable.

There is no pre-splitting of files per rank. Every rank opens the same file (or folder) as a
*source* — a map-style object with ``__len__`` and ``__getitem__`` — and :class:`ShardedDataset`
decides, from ``(seed, epoch)`` alone, which samples each rank reads. So any rank can be restarted
on any machine, and a resumed run reads what the uninterrupted run would have read.

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

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from maru.errors import TrainError

if TYPE_CHECKING:
    import torch

    from .workers import ShardedLoader


class Source(Protocol):
    """What :class:`ShardedDataset` reads: a map-style collection of samples.

    A source may also offer ``__getitems__(indices) -> list[sample]`` (one read for a batch, the
    convention torch's ``DataLoader`` uses) and ``read_batch(index_tensor) -> batch`` (an already
    collated batch in one indexing operation, used when no custom ``collate`` is given).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


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
        self._check_not_empty()
        return self._iterate()

    def _check_not_empty(self) -> None:
        if self._n == 0:
            raise TrainError("the data source is empty; check its path and contents")
        if len(self) == 0:
            raise TrainError(
                f"the source has {self._n} samples, fewer than batch_size * world_size = "
                f"{self.batch_size * self.world_size}: an epoch would have no batch; use a smaller "
                "batch size or drop_last=False"
            )

    def _iterate(self) -> Iterator[Any]:
        version = self._version
        for indices in self._plan():
            self._took_step()
            yield self._read(indices)
            if self._version != version:  # set_epoch / load_state_dict / shard while iterating
                return
        self._end_epoch()

    def _plan(self) -> Iterator[torch.Tensor]:
        """This rank's sample indices for each step left in the epoch; changes no position (a
        loader with workers reads ahead of what the training loop has taken)."""
        order = self._epoch_order()
        for step in range(self._step, self._steps_from(self._start)):
            yield self._rank_indices(order, step)

    def _took_step(self) -> None:
        self._step += 1

    def _end_epoch(self) -> None:
        self._epoch += 1
        self._start = self._step = self._steps_before = 0
        self._version += 1

    def loader(
        self,
        *,
        num_workers: int = 2,
        prefetch_factor: int = 2,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
    ) -> ShardedLoader:
        """These batches read by ``num_workers`` worker processes, ``prefetch_factor`` batches
        ahead each, into pinned memory when CUDA is there (``pin_memory=None``); the position
        still moves only as the training loop takes batches, so resume stays exact."""
        from .workers import ShardedLoader

        return ShardedLoader(
            self,
            num_workers=num_workers,
            prefetch_factor=prefetch_factor,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
        )

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
