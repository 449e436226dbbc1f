"""Seeding, and initial weights that do not depend on when the task was built.

The rule: a task's initial weights are the ones it gets when it is built right after
``seed_everything(trainer seed)``. ``Trainer(...)`` seeds when it is made, so a task built right
after the trainer already has them. A task built any other way — before the trainer, or after
other random draws — is rebuilt by ``fit`` under that seed (its constructor runs again with the
same arguments and the fresh weights are copied in), unless its weights were changed since it
was built (loaded from a file, trained by an earlier ``fit``): those are kept as they are. So two
runs of the same program give the same result whichever order it builds things in, and a restart
before the first checkpoint starts from the same weights.

Only what the task's constructor builds is rebuilt: a module built elsewhere and handed to the
task (an argument, a closure) comes back the same object, so its weights are whatever they were —
seed before building it. A task whose constructor must not run twice (it is slow, or has side
effects) sets ``rebuild_on_fit = False`` and seeds itself.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .task import Task

_building = threading.local()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    import torch

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)


@dataclass(frozen=True, slots=True)
class Construction:
    """How a task was built: torch's RNG state when its constructor began, the constructor's
    arguments, and its weights' version counters when it ended."""

    rng_state: torch.Tensor
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    versions: tuple[int, ...]


def recording_construction(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a task class's ``__init__`` so that the outermost call records the
    :class:`Construction` (nested task constructions inside it record nothing)."""

    @functools.wraps(init)
    def wrapped(self: Task, *args: Any, **kwargs: Any) -> None:
        import torch

        depth = getattr(_building, "depth", 0)
        state = torch.get_rng_state() if depth == 0 else None
        _building.depth = depth + 1
        try:
            init(self, *args, **kwargs)
        finally:
            _building.depth = depth
        if state is not None:
            self.__dict__["_construction"] = Construction(state, args, kwargs, _versions(self))

    return wrapped


def settle_initial_weights(task: Task, seed: int) -> bool:
    """Give ``task`` the weights it would have if built right after ``seed_everything(seed)`` (see
    the module docstring); returns whether it was rebuilt."""
    import torch

    built = task.__dict__.get("_construction")
    if built is None or not getattr(task, "rebuild_on_fit", True):
        return False
    if _versions(task) != built.versions:  # loaded or trained since: keep those weights
        return False
    if torch.equal(built.rng_state, torch.Generator().manual_seed(seed).get_state()):
        return False  # built right after seeding with this seed
    seed_everything(seed)
    fresh = type(task)(*built.args, **built.kwargs)
    task.load_state_dict(fresh.state_dict())
    task.__dict__["_construction"] = Construction(
        fresh.__dict__["_construction"].rng_state, built.args, built.kwargs, _versions(task)
    )
    return True


def _versions(task: Task) -> tuple[int, ...]:
    return tuple(t._version for t in chain(task.parameters(), task.buffers()))
