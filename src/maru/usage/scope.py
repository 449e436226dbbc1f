"""Which trackers and budgets are active for the code running now.

One ``ContextVar``: ``None`` when nothing is tracked or budgeted (then model calls skip accounting
entirely). Copied into pool threads and asyncio tasks like any context variable, so calls made in
parallel branches, batches and async tasks are counted by the blocks that started them.

``track()`` and ``with Budget(...)`` push a scope that extends the current one (inner and outer
trackers both record; every active budget is checked) and restore the previous one on exit.
Each pushed scope remembers its parent and its owner, so leaving a block restores the right scope
in whichever thread or task it runs — no token has to be kept on the (shareable) tracker or budget.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .budget import Budget
    from .tracker import UsageTracker

__all__ = ["UsageScope", "current_scope", "enter_scope", "exit_scope"]


@dataclass(frozen=True, slots=True)
class UsageScope:
    trackers: tuple[UsageTracker, ...] = ()
    budgets: tuple[Budget, ...] = ()
    parent: UsageScope | None = field(default=None, compare=False, repr=False)
    owner: Any = field(default=None, compare=False, repr=False)


current_scope: ContextVar[UsageScope | None] = ContextVar("maru_usage_scope", default=None)


def enter_scope(owner: Any, *, tracker: UsageTracker | None = None, budget: Budget | None = None) -> UsageScope:
    """Push a scope adding ``tracker`` and/or ``budget`` to the current one (an object already
    active is not added twice, so it never counts a call twice)."""
    parent = current_scope.get()
    trackers = parent.trackers if parent is not None else ()
    budgets = parent.budgets if parent is not None else ()
    if tracker is not None and not any(t is tracker for t in trackers):
        trackers = (*trackers, tracker)
    if budget is not None and not any(b is budget for b in budgets):
        budgets = (*budgets, budget)
    scope = UsageScope(trackers, budgets, parent, owner)
    current_scope.set(scope)
    return scope


def exit_scope(owner: Any) -> None:
    """Leave the innermost scope ``owner`` pushed in this context (and any left open inside it)."""
    scope = current_scope.get()
    probe = scope
    while probe is not None and probe.owner is not owner:
        probe = probe.parent
    if probe is None:
        return  # not active here (exited already, or entered in another context)
    current_scope.set(probe.parent)
