"""The sink contract: where the tracer hands each finished trace.

The tracer calls a sink from its background thread, never from the caller's: ``write`` once per
complete trace (children before parents, the root last), ``flush`` when asked to make everything
written durable or visible, ``close`` once at the end. Built-in sinks: :class:`~maru.tracing.store.RunStore`
(SQLite, the default), :class:`~maru.tracing.jsonl.JSONLSink` and :class:`~maru.tracing.otel.OTelSink`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .run import Run

__all__ = ["RunSink"]


@runtime_checkable
class RunSink(Protocol):
    """Anything with these three methods is a sink; no base class is needed."""

    def write(self, runs: list[Run]) -> None:
        """Store or export complete traces: one or more, each with its runs children before parents
        and its root last."""
        ...

    def flush(self) -> None:
        """Make what was written so far durable or sent (may be a no-op)."""
        ...

    def close(self) -> None:
        """Flush and release files, connections or exporters. Called once, last."""
        ...
