"""The errors a graph raises on purpose: each says what was wrong and what to do."""

from __future__ import annotations

from typing import Any

from ..errors import MaruError


class GraphError(MaruError, ValueError):
    """A graph is built or used wrongly: an unknown node, an edge to nowhere, a node update that
    is not a dict of state keys, two nodes replacing the same key in one step."""


class GraphRecursionError(GraphError):
    """A run went ``limit`` supersteps without reaching the end (a loop that never stops).

    ``state`` is the state when it stopped and ``next`` the nodes that would have run; with a
    checkpointer the run is saved there too, so ``invoke(None, same thread)`` continues it."""

    def __init__(self, message: str, *, state: dict[str, Any], next: tuple[str, ...], limit: int) -> None:
        super().__init__(message)
        self.state = state
        self.next = next
        self.limit = limit


class GraphCheckpointError(GraphError):
    """A checkpoint store cannot be used: its file is corrupt, locked, someone else's, or a value
    in the state cannot be stored."""
