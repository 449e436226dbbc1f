"""What ``self.log`` collects, per stage: a :class:`StageLog` for training, one for validation, one
for testing.

Lightning's defaults: in ``training_step`` a value is a step metric (the last value, read at the
next logging step), in ``validation_step`` / ``test_step`` and in ``on_*_epoch_end`` hooks it is an
epoch metric — the mean over the stage's batches, weighted by batch size. ``on_step`` and
``on_epoch`` both true log ``name_step`` and ``name_epoch``. ``sync_dist=True`` makes the value a
mean over ranks too; the reduction is one all-reduce for all such values of a stage, done when the
values are read (a logging step, the end of an epoch or pass), never per ``log`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .batch import batch_size_of

if TYPE_CHECKING:
    import torch

Reduce = Callable[["torch.Tensor"], "torch.Tensor"]


class StageLog:
    """The values one stage logged. ``batch`` is the batch being processed (set by the loop), from
    which an epoch value's weight is read when ``batch_size`` is not given."""

    def __init__(self, stage: str, *, on_step: bool, on_epoch: bool) -> None:
        self.stage = stage
        self.on_step, self.on_epoch = on_step, on_epoch
        self.in_epoch_hook = False  # an on_*_epoch_end hook is running: values are epoch values
        self.batch: Any = None
        self.step: dict[str, Any] = {}
        self.sums: dict[str, list[Any]] = {}  # name -> [sum of value * weight, sum of weights]
        self.synced: set[str] = set()
        self.prog_bar: set[str] = set()

    def log(
        self,
        name: str,
        value: Any,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        *,
        prog_bar: bool = False,
        sync_dist: bool = False,
        batch_size: int | None = None,
    ) -> None:
        hook = self.in_epoch_hook
        step = (self.on_step and not hook) if on_step is None else on_step
        epoch = (self.on_epoch or hook) if on_epoch is None else on_epoch
        both = step and epoch
        if step:
            key = f"{name}_step" if both else name
            self.step[key] = value
            self._mark(key, prog_bar, sync_dist)
        if epoch:
            key = f"{name}_epoch" if both else name
            self._accumulate(key, value, batch_size)
            self._mark(key, prog_bar, sync_dist)

    def _mark(self, key: str, prog_bar: bool, sync_dist: bool) -> None:
        if sync_dist:
            self.synced.add(key)
        if prog_bar:
            self.prog_bar.add(key)

    def _accumulate(self, key: str, value: Any, batch_size: int | None) -> None:
        if hasattr(value, "detach"):
            value = value.detach().float()
        weight = batch_size if batch_size is not None else (1 if self.in_epoch_hook else batch_size_of(self.batch))
        entry = self.sums.get(key)
        if entry is None:
            self.sums[key] = [value * weight, weight]
        else:
            entry[0] = entry[0] + value * weight
            entry[1] += weight

    # ------------------------------------------------------------------------ reading
    def step_values(self, reduce: Reduce | None) -> dict[str, float]:
        """The step metrics as floats, means over ranks for ``sync_dist`` ones (``reduce`` sums a
        tensor over ranks; ``None`` in one process)."""
        return _floats(self.step, self.synced, reduce, counts=None)

    def epoch_values(self, reduce: Reduce | None) -> dict[str, float]:
        """The epoch metrics as floats (weighted means), then forget them for the next epoch."""
        sums = {name: entry[0] for name, entry in self.sums.items()}
        counts = {name: float(entry[1]) for name, entry in self.sums.items()}
        values = _floats(sums, self.synced, reduce, counts=counts)
        self.sums = {}
        return values


def _floats(
    values: Mapping[str, Any],
    synced: set[str],
    reduce: Reduce | None,
    counts: Mapping[str, float] | None,
) -> dict[str, float]:
    """``values`` (divided by ``counts``, when given) as floats; the ``synced`` ones are summed over
    ranks in one all-reduce first (with their counts, or divided by the world size)."""
    local = [name for name in values if reduce is None or name not in synced]
    result = {name: to_float(values[name]) / _count(counts, name) for name in local}
    names = sorted(name for name in values if name not in result)
    if names and reduce is not None:
        import torch

        weights = [_count(counts, name) for name in names]
        device = next((v.device for v in values.values() if hasattr(v, "device")), None)
        packed = torch.tensor([to_float(values[n]) for n in names] + weights, device=device)
        totals = reduce(packed).tolist()
        for i, name in enumerate(names):
            result[name] = totals[i] / max(totals[len(names) + i], 1e-12)
    return result


def _count(counts: Mapping[str, float] | None, name: str) -> float:
    return max(counts[name], 1e-12) if counts is not None else 1.0


def to_float(value: Any) -> float:
    """A tensor (a DTensor too) or a number as a Python float."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    if hasattr(value, "item"):
        return float(value.detach().float().item())
    return float(value)
