"""Which trackers and budgets are active for the code running now.

One ``ContextVar``: ``None`` when nothing is tracked or budgeted (then model calls skip accounting
entirely). Copied into pool threads and asyncio tasks like any context variable, so calls made in
parallel branches, batches and async tasks are counted by the blocks that started them.

``track()`` and ``with Budget(...)`` push a scope that extends the current one (inner and outer
trackers both record; every active budget is checked) and restore the previous one on exit.
Each pushed scope remembers its parent and its owner, so leaving a block restores the right scope
in whichever thread or task it runs — no token has to be kept on the (shareable) tracker or budget.

**Reach beyond the context.** A thread started by hand, a stdlib ``ThreadPoolExecutor`` or
``loop.run_in_executor`` runs in a fresh context, where the ContextVar is empty — a budget would
silently not apply there. So every block also registers what it adds process-wide while it is open,
and :func:`active_scope` gives a call with no scope of its own the union of the blocks open in
*other* threads. The context takes precedence: a call whose context carries a scope uses that
scope only. Blocks open in the calling thread are left out, because there an empty context means
work not started from the block (an asyncio task beside it on the same loop).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .budget import Budget
    from .tracker import UsageTracker

__all__ = ["UsageScope", "active_scope", "current_scope", "enter_scope", "exit_scope"]


@dataclass(frozen=True, slots=True)
class UsageScope:
    trackers: tuple[UsageTracker, ...] = ()
    budgets: tuple[Budget, ...] = ()
    parent: UsageScope | None = field(default=None, compare=False, repr=False)
    owner: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class _OpenBlock:
    """One open ``with`` block, as the process-wide registry sees it: what it added, and where."""

    scope: UsageScope
    thread: int
    trackers: tuple[UsageTracker, ...]
    budgets: tuple[Budget, ...]


current_scope: ContextVar[UsageScope | None] = ContextVar("maru_usage_scope", default=None)

_open_lock = threading.Lock()
_open_blocks: tuple[_OpenBlock, ...] = ()
"""Blocks is open anywhere in the process; replaced, never mutated (read without a lock)."""


def active_scope() -> UsageScope | None:
    """The scope a model call made now is accounted in: the context's own, else the blocks open in
    other threads (see the module docstring), else ``None``."""
    scope = current_scope.get()
    if scope is not None or not _open_blocks:
        return scope
    return _reach(threading.get_ident())


def _reach(thread: int) -> UsageScope | None:
    """The union of the blocks open in threads other than ``thread``; ``None`` if there are none."""
    trackers: tuple[UsageTracker, ...] = ()
    budgets: tuple[Budget, ...] = ()
    for block in _open_blocks:
        if block.thread != thread:
            trackers = _union(trackers, block.trackers)
            budgets = _union(budgets, block.budgets)
    if not trackers and not budgets:
        return None
    return UsageScope(trackers, budgets)


def _union(have: tuple[Any, ...], more: tuple[Any, ...]) -> tuple[Any, ...]:
    """``have`` plus the items of ``more`` not already in it (by identity: a block counts once)."""
    extra = tuple(item for item in more if not any(item is known for known in have))
    return (*have, *extra) if extra else have


def enter_scope(owner: Any, *, tracker: UsageTracker | None = None, budget: Budget | None = None) -> UsageScope:
    """Push a scope adding ``tracker`` and/or ``budget`` to the current one (an object already
    active is not added twice, so it never counts a call twice). In a context without a scope the
    block extends what reaches it from other threads, so a budget there still applies inside."""
    global _open_blocks
    parent = current_scope.get()
    base = parent if parent is not None else active_scope()
    added_trackers = (tracker,) if tracker is not None else ()
    added_budgets = (budget,) if budget is not None else ()
    scope = UsageScope(
        _union(base.trackers if base is not None else (), added_trackers),
        _union(base.budgets if base is not None else (), added_budgets),
        parent,
        owner,
    )
    current_scope.set(scope)
    block = _OpenBlock(scope, threading.get_ident(), added_trackers, added_budgets)
    with _open_lock:
        _open_blocks = (*_open_blocks, block)
    return scope


def exit_scope(owner: Any) -> None:
    """Leave the innermost scope ``owner`` pushed in this context (and any left open inside it)."""
    global _open_blocks
    scope = current_scope.get()
    left: list[UsageScope] = []
    probe = scope
    while probe is not None and probe.owner is not owner:
        left.append(probe)
        probe = probe.parent
    if probe is None:  # not active here: exited already, or entered in another context
        _forget_foreign_block(owner)
        return
    left.append(probe)
    current_scope.set(probe.parent)
    with _open_lock:
        _open_blocks = tuple(b for b in _open_blocks if not any(b.scope is gone for gone in left))


def _forget_foreign_block(owner: Any) -> None:
    """A block left from another context than the one it was entered in (an asyncio task other
    than the one that entered it): that context cannot be restored from here, but the block must
    stop reaching other threads. The latest block ``owner`` entered in this thread is dropped."""
    global _open_blocks
    thread = threading.get_ident()
    with _open_lock:
        for i in range(len(_open_blocks) - 1, -1, -1):
            block = _open_blocks[i]
            if block.scope.owner is owner and block.thread == thread:
                _open_blocks = _open_blocks[:i] + _open_blocks[i + 1 :]
                return
