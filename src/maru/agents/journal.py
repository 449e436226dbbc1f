"""Tool results recorded the moment each tool returns, so a crash does not repeat a side effect.

A checkpointed agent saves the graph after each step, and a step of the ``tools`` node may run
several calls. Without more, a process killed after one call returned but before the step's
checkpoint would run that call again on resume. So each result is also written, as soon as the
tool returns, to the thread's journal — the same checkpointer, under the thread id
``"<thread_id>#tools"`` — and a resumed step takes the results it finds there instead of running
those calls again. What remains is the window inside a call: a process killed while a tool runs
runs it once more on resume, with the same :func:`tool_call_key`, so a tool that passes the key to
the outside system (or checks it itself) can do its effect once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..graph.checkpoint import Checkpoint, CheckpointSaver
from ..graph.interrupts import idempotency_key
from ..messages import ToolCall, ToolMessage

__all__ = ["JOURNAL_SUFFIX", "ToolJournal", "tool_call_key"]

JOURNAL_SUFFIX = "#tools"
"""Appended to a thread's id to name its journal of tool results."""
_SLOTS = 1 << 16
"""Journal entries of one graph step are numbered step * _SLOTS + 0, 1, … (in the order they end)."""

_call_key: ContextVar[str | None] = ContextVar("maru_tool_call_key", default=None)


def tool_call_key() -> str | None:
    """The idempotency key of the tool call running now: ``"<thread>:<step>:tools:<call id>"``,
    the same each time this call runs again (after a crash during it), different for any other
    call. ``None`` outside a checkpointed agent (nothing is resumed there, so nothing repeats)."""
    return _call_key.get()


@contextmanager
def keyed(key: str | None) -> Iterator[None]:
    """Run the block as the tool call with ``key`` (what :func:`tool_call_key` returns in it)."""
    token = _call_key.set(key)
    try:
        yield
    finally:
        _call_key.reset(token)


class ToolJournal:
    """The tool results of one step of one thread: read once when the step starts, written as
    each call ends."""

    def __init__(self, saver: CheckpointSaver) -> None:
        self.saver = saver
        self.node_key = idempotency_key()  # "<thread>:<step>:<node>", as maru.graph documents it
        thread, step, _ = self.node_key.rsplit(":", 2)
        self.thread = thread + JOURNAL_SUFFIX
        self.first = int(step) * _SLOTS
        self._lock = threading.Lock()
        entries = [cp for cp in saver.records(self.thread, self.first - 1) if cp.step < self.first + _SLOTS]
        self.recorded = {cp.metadata["call"]: cp for cp in entries}
        self._next = self.first + len(entries)

    def key(self, index: int, call: ToolCall) -> str:
        """The idempotency key of the call at ``index`` of the step's model message."""
        return f"{self.node_key}:{call.id or index}"

    def done(self, index: int, call: ToolCall) -> ToolMessage | None:
        """The result recorded for the call at ``index``, if this very call (same key, tool and
        arguments: not one of a deleted thread whose id was used again) ran to the end before."""
        entry = self.recorded.get(index)
        if entry is None or entry.metadata.get("call_as") != _call_as(self.key(index, call), call):
            return None
        message: ToolMessage = entry.writes[0][1]["message"]  # type: ignore[index]
        return message

    def record(self, index: int, call: ToolCall, result: ToolMessage) -> None:
        """Write the call's result durably (the saver commits it) before the step goes on."""
        import time

        metadata: dict[str, Any] = {"source": "tool", "call": index, "call_as": _call_as(self.key(index, call), call)}
        with self._lock:
            step, self._next = self._next, self._next + 1
            entry = Checkpoint(step, [("tools", {"message": result})], (), {}, metadata, time.time())
            self.saver.put(self.thread, entry)
            self.recorded[index] = entry


def _call_as(key: str, call: ToolCall) -> str:
    return f"{key} {call.name} {json.dumps(call.args, sort_keys=True, default=str)}"
