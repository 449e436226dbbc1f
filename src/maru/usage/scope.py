"""Which trackers and budgets are active for the code running now.

One ``ContextVar``: ``None`` when nothing is tracked or budgeted (then model calls skip accounting
entirely). Copied into pool threads and asyncio tasks like any context variable, so calls made in
parallel branches, batches and async tasks are counted by the blocks that started them.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .budget import Budget
    from .tracker import UsageTracker


@dataclass(frozen=True, slots=True)
class UsageScope:
    trackers: tuple[UsageTracker, ...] = ()
    budgets: tuple[Budget, ...] = ()


current_scope: ContextVar[UsageScope | None] = ContextVar("maru_usage_scope", default=None)
