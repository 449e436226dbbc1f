"""What a trace of a ``maru.graph`` run says about its thread: the checkpoints it saved.

A traced graph run marks the runs it adds around its nodes with ``metadata["maru_graph"]``
(``input``, ``resume``, ``continue``, ``step``, ``interrupt``) and lists every checkpoint one of
them saved in its output's ``checkpoints`` (see ``maru.graph.traced``). Reading them back needs
nothing but the trace: not the saver's database, which may be elsewhere or gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .run import Run

__all__ = ["GRAPH_MARKER", "graph_summary", "is_paused"]

GRAPH_MARKER = "maru_graph"
"""The metadata key of the runs a traced graph adds (the same name as ``maru.graph.traced.MARKER``;
tracing does not import graph)."""

INPUT_WRITER = "__input__"
PAUSE_ERROR = "GraphInterrupt"


def is_paused(run: Run) -> bool:
    """Whether ``run`` is a graph node that called ``interrupt()``: it ended with
    ``GraphInterrupt`` and its thread waits for an answer; nothing failed."""
    return run.error is not None and run.error.startswith(PAUSE_ERROR)


def graph_summary(runs: Sequence[Run]) -> dict[str, Any] | None:
    """A graph trace's thread and checkpoints, oldest first (``None`` for a trace with no graph
    run in it). Each checkpoint: ``step``, ``source`` (``input``, ``loop``, ``pending``,
    ``update``), ``writers`` (the nodes whose updates it holds; ``input`` for the call's input),
    ``next``, ``created_at``, and the id and name of the run that saved it."""
    parts = sorted((r for r in runs if r.metadata.get(GRAPH_MARKER)), key=lambda r: r.start_time)
    if not parts:
        return None
    checkpoints = [_checkpoint(saved, part) for part in parts for saved in _saved(part)]
    threads = list(dict.fromkeys(str(r.metadata["thread_id"]) for r in parts if "thread_id" in r.metadata))
    interrupts = [
        {"node": r.metadata.get("langgraph_node", ""), "value": r.inputs, "run_id": r.id}
        for r in parts
        if r.metadata.get(GRAPH_MARKER) == "interrupt"
    ]
    return {"threads": threads, "checkpoints": checkpoints, "interrupts": interrupts}


def _saved(part: Run) -> list[dict[str, Any]]:
    outputs = part.outputs
    found = outputs.get("checkpoints") if isinstance(outputs, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _checkpoint(saved: dict[str, Any], part: Run) -> dict[str, Any]:
    writers = saved.get("writers") or []
    return {
        "thread_id": saved.get("thread_id"),
        "step": saved.get("step"),
        "source": saved.get("source"),
        "writers": ["input" if w == INPUT_WRITER else w for w in writers],
        "next": saved.get("next") or [],
        "created_at": saved.get("created_at"),
        "run_id": part.id,
        "run_name": part.name,
    }
