"""A plain ``torch.utils.data.DataLoader`` that keeps its place: exact mid-epoch resume, and a
``DistributedSampler`` of its own under data parallelism.

How the place is kept, with no new dependency: an epoch's order is decided by the random
generators its sampler draws from when the epoch starts (torch's global generator for
``shuffle=True``, or the ``generator`` given to the loader or sampler). :class:`ResumableLoader`
captures those generators' states at the start of every epoch and counts the batches handed out.
A resumed run puts the captured states back just while it starts the epoch's iterator — so the
sampler draws the same order and the workers the same base seed — then restores the generators
as the checkpoint left them and skips the batches already trained on. Skipping happens on the
*index* level, in the main process (a wrapper around the batch sampler drops the first ``k``
index lists): no sample is read, so resuming late in an epoch costs index generation only.
A custom sampler that draws from Python's or NumPy's generators rather than torch's is not
replayed (its order after a resume is a new one); torch's own samplers all draw from torch.
Randomness inside worker processes (augmentation in ``__getitem__``) is not replayed either:
the workers' generators, advanced by the batches before the checkpoint, are not saved, so the
same samples come in the same order with other random draws. Without workers that randomness
comes from torch's global generator, which the checkpoint restores: exact.

Under DDP a map-style loader whose sampler is torch's ``RandomSampler`` or ``SequentialSampler``
is rebuilt with the same settings around a ``DistributedSampler`` (``shuffle`` kept, the trainer's
seed, ``set_epoch`` every epoch); a custom sampler or batch sampler cannot be split safely, and
is refused with a message saying what to do.

An ``IterableDataset`` has no sampler: it keeps its place only through the
:class:`~maru.train.data.resume.Stateful` protocol (see :mod:`.resume`).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from maru.errors import TrainError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader


def is_plain_dataloader(data: Any) -> bool:
    """An instance of ``torch.utils.data.DataLoader`` itself (a subclass's constructor may take
    other arguments, so it cannot be rebuilt safely)."""
    from torch.utils.data import DataLoader

    return type(data) is DataLoader


class SkippingSampler:
    """An index (or index-list) sampler whose next pass can replay an earlier one: draw its order
    from captured generator states and drop the items already taken.

    Everything happens when a pass is first advanced, not when it is created (a DataLoader with
    workers creates a pass it never uses): a fresh pass records the generator states its order is
    drawn from (``drawn_with``); a replayed pass draws from ``replay`` instead, skips ``skip``
    items, and puts torch's global generator back as it found it.
    """

    def __init__(self, inner: Iterable[Any], generators: list[torch.Generator]) -> None:
        self.inner = inner
        self.generators = generators
        self.skip = 0
        self.replay: list[torch.Tensor] | None = None
        self.drawn_with: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        items = self._start()
        first = next(items, _END)
        if first is _END:
            return
        yield first
        yield from items

    def _start(self) -> Iterator[Any]:
        skip, replay, self.skip, self.replay = self.skip, self.replay, 0, None
        if replay is None:
            self.drawn_with = _capture(self.generators)
            return iter(self.inner)
        with _replaying(self.generators, replay):
            items = iter(self.inner)
            collections.deque(itertools.islice(items, skip), maxlen=0)
            first = next(items, _END)  # the order is drawn by now
        self.drawn_with = replay
        return items if first is _END else itertools.chain((first,), items)


_END = object()


@contextlib.contextmanager
def _replaying(generators: list[torch.Generator], states: list[torch.Tensor]) -> Iterator[None]:
    """Draw from ``generators`` as they were in ``states``; then torch's global generator (whose
    stream the training steps use, restored from the checkpoint) is put back as it was. The
    others keep their advanced states, as in the run that first drew from them."""
    now = generators[0].get_state()
    _restore(generators, states)
    try:
        yield
    finally:
        generators[0].set_state(now)


def _loader_settings(loader: DataLoader[Any]) -> dict[str, Any]:
    """Everything of a DataLoader but its dataset, sampler, batch sampler, batch size and drop_last."""
    return {
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        "multiprocessing_context": loader.multiprocessing_context,
        "generator": loader.generator,
        "prefetch_factor": loader.prefetch_factor,
        "persistent_workers": loader.persistent_workers,
        "pin_memory_device": loader.pin_memory_device,
        "in_order": loader.in_order,
    }


def _sampler_of(loader: DataLoader[Any]) -> Any:
    """The sampler that decides the loader's order: the one inside torch's own BatchSampler (a
    DataLoader given ``batch_size`` makes one; a user may pass one), else ``loader.sampler``."""
    from torch.utils.data import BatchSampler

    batches = loader.batch_sampler
    return batches.sampler if type(batches) is BatchSampler else loader.sampler


def _distributed_sampler(loader: DataLoader[Any], rank: int, world_size: int, seed: int) -> Any:
    """The loader's sampling as a DistributedSampler, or a TrainError saying why it cannot be."""
    from torch.utils.data import BatchSampler, DistributedSampler, RandomSampler, SequentialSampler

    sampler, batch_sampler = _sampler_of(loader), loader.batch_sampler
    if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
        raise TrainError(
            f"the DataLoader has a custom batch_sampler ({type(batch_sampler).__name__}), which maru "
            f"cannot split across {world_size} data-parallel ranks: every rank would read the same "
            "batches. Make it yield each rank its own batches (it can read torch.distributed's rank), "
            "or use a sampler with batch_size, or a ShardedDataset"
        )
    if isinstance(sampler, DistributedSampler):
        return sampler
    random = type(sampler) is RandomSampler
    if not random and type(sampler) is not SequentialSampler:
        raise TrainError(
            f"the DataLoader has a custom sampler ({type(sampler).__name__}), which maru cannot split "
            f"across {world_size} data-parallel ranks: every rank would read the same samples. Wrap "
            "your sampling in a torch.utils.data.DistributedSampler (or a sampler that splits by "
            "rank), or use a ShardedDataset"
        )
    if random and (sampler.replacement or sampler.num_samples != len(sampler.data_source)):  # type: ignore[attr-defined]
        raise TrainError(
            "the DataLoader's RandomSampler draws with replacement or a custom num_samples, which a "
            "DistributedSampler cannot reproduce; give the loader a sampler that splits by rank"
        )
    return DistributedSampler(
        loader.dataset, num_replicas=world_size, rank=rank, shuffle=random, seed=seed  # type: ignore[arg-type]
    )


def _capture(generators: list[torch.Generator]) -> list[torch.Tensor]:
    return [g.get_state() for g in generators]


def _restore(generators: list[torch.Generator], states: list[torch.Tensor]) -> None:
    for generator, state in zip(generators, states, strict=True):
        generator.set_state(state)


class ResumableLoader:
    """Wraps a plain map-style DataLoader so that it resumes exactly mid-epoch (see the module).

    It has the trainer's data protocol: ``shard(rank, world_size)``, ``set_epoch``,
    ``state_dict``/``load_state_dict``, and iterating yields the loader's batches. ``seed`` seeds
    a DistributedSampler it adds under data parallelism.
    """

    def __init__(self, loader: DataLoader[Any], *, seed: int = 0) -> None:
        self.original = loader
        self.seed = int(seed)
        self._world = 1
        self._epoch = 0
        self._taken = 0  # batches handed out this epoch
        self._started_with: list[torch.Tensor] | None = None  # generator states at iter(loader)
        self._resume: dict[str, Any] | None = None  # a checkpoint's epoch start, to replay once
        self._build(_sampler_of(loader))

    def _build(self, sampler: Any) -> None:
        """A loader like the original around ``sampler``, its indices behind a SkippingSampler."""
        from torch.utils.data import BatchSampler, DataLoader

        loader = self.original
        settings = _loader_settings(loader)
        self.sampler = sampler
        self._generators = self._find_generators()
        if loader.batch_size is None and loader.batch_sampler is None:  # no auto-collation
            self._indices = SkippingSampler(sampler, self._generators)
            self.loader = DataLoader(loader.dataset, sampler=self._indices, batch_size=None, **settings)
            return
        batches: Any = loader.batch_sampler
        if sampler is not _sampler_of(loader):  # a DistributedSampler in place of the original
            batches = BatchSampler(sampler, batches.batch_size, batches.drop_last)
        self._indices = SkippingSampler(batches, self._generators)
        self.loader = DataLoader(loader.dataset, batch_sampler=self._indices, **settings)

    def _find_generators(self) -> list[torch.Generator]:
        """What an epoch's start draws from: torch's global generator (first), the loader's and
        the sampler's own (each once, in a fixed order)."""
        import torch

        found: list[torch.Generator] = [torch.default_generator]
        for candidate in (self.original.generator, getattr(self.sampler, "generator", None)):
            if isinstance(candidate, torch.Generator) and all(candidate is not g for g in found):
                found.append(candidate)
        return found

    # -- the trainer's data protocol ---------------------------------------------------------

    def shard(self, rank: int, world_size: int) -> None:
        """Read as data-parallel rank ``rank`` of ``world_size``: with more than one, the loader
        is rebuilt around a DistributedSampler (a TrainError when its sampling cannot be split)."""
        self._world = int(world_size)
        if world_size > 1:
            sampler = _distributed_sampler(self.original, rank, world_size, self.seed)
            if sampler is not self.sampler:
                self._build(sampler)
        self._propagate_epoch()

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch; the current epoch again keeps its place."""
        if epoch != self._epoch:
            self._epoch, self._taken, self._resume = int(epoch), 0, None
        self._propagate_epoch()

    def _propagate_epoch(self) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self._epoch)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def epoch(self) -> int:
        return self._epoch

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        if resume is None:
            self._taken = 0
            self._started_with = _capture(self._generators)
            return self._counted(iter(self.loader))
        # the epoch as it first started (the workers' base seed too), past the batches taken
        self._started_with = resume["started_with"]
        self._indices.skip, self._indices.replay = self._taken, resume["drawn_with"]
        with _replaying(self._generators, resume["started_with"]):
            iterator = iter(self.loader)
        return self._counted(iterator)

    def _counted(self, iterator: Iterator[Any]) -> Iterator[Any]:
        for batch in iterator:
            self._taken += 1
            yield batch
        self._epoch, self._taken = self._epoch + 1, 0
        self._propagate_epoch()  # a loop that never calls set_epoch still reshuffles

    def state_dict(self) -> dict[str, Any]:
        """``epoch``, ``offset`` (batches taken this epoch), the generator states the epoch started
        and drew its order with, and what must match to resume (``len``, ``world_size``)."""
        if self._resume is not None:  # loaded, not iterated yet
            return dict(self._resume, epoch=self._epoch, offset=self._taken)
        return {
            "epoch": self._epoch,
            "offset": self._taken,
            "started_with": self._started_with,
            "drawn_with": self._indices.drawn_with,
            "len": len(self.loader),
            "world_size": self._world,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved place: the same epoch order, past the batches already taken.

        A different number of batches or world size means the saved place is in another order:
        the epoch then restarts from its first batch, with a warning.
        """
        self._epoch, self._taken, self._resume = int(state.get("epoch", 0)), 0, None
        self._propagate_epoch()
        offset = int(state.get("offset", 0))
        saved = (state.get("len"), state.get("world_size"))
        if saved != (len(self.loader), self._world):
            warnings.warn(
                f"the DataLoader's epoch had {saved[0]} batches on {saved[1]} ranks when saved and "
                f"has {len(self.loader)} on {self._world} now: epoch {self._epoch} restarts from its "
                "first batch",
                stacklevel=2,
            )
        elif offset > 0 and state.get("started_with") is not None and state.get("drawn_with") is not None:
            self._taken = offset
            self._resume = {key: state[key] for key in ("started_with", "drawn_with", "len", "world_size")}

    def __repr__(self) -> str:
        return (
            f"ResumableLoader(epoch={self._epoch}, taken={self._taken}, batches={len(self)}, "
            f"world_size={self._world})"
        )
