"""Traces for the terminal (``maru trace ls`` / ``show``): a rich table of traces and a rich tree
of one trace's runs. Everything from a trace is shown as plain text, never as rich markup."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .graphs import graph_summary, is_paused
from .run import Run
from .store import TraceStats

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

__all__ = [
    "format_cost",
    "format_latency",
    "format_time",
    "format_tokens",
    "checkpoints_table",
    "preview",
    "trace_tree",
    "traces_table",
]


def format_time(seconds: float) -> str:
    """Local time, to the second."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def format_latency(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def format_tokens(run: Run) -> str:
    if run.input_tokens is None and run.output_tokens is None:
        return "—"
    return f"{(run.input_tokens or 0) + (run.output_tokens or 0):,}"


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "—"
    if cost == 0:
        return "$0"
    return f"${cost:,.6f}" if cost < 0.01 else f"${cost:,.4f}"


def preview(value: Any, width: int = 80) -> str:
    """One line of at most ``width`` characters: strings as they are, anything else as compact JSON."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def traces_table(
    roots: Sequence[Run], stats: Mapping[str, TraceStats] | None = None, *, caption: str | None = None
) -> Table:
    """One row per trace (its root run): started, name, latency, tokens, cost, status, trace id."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    stats = stats or {}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, caption=caption)
    table.add_column("started", no_wrap=True, style="dim")
    table.add_column("name", overflow="fold")
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("trace id", no_wrap=True, style="cyan")
    for root in roots:
        counted = stats.get(root.trace_id)
        if root.error:
            status = Text("error", style="bold red")
        elif counted and counted.errors:
            status = Text(f"ok, {counted.errors} failed", style="yellow")
        else:
            status = Text("ok", style="green")
        table.add_row(
            format_time(root.start_time),
            Text(root.name),
            format_latency(root.latency),
            format_tokens(root),
            format_cost(root.cost),
            status,
            Text(root.trace_id),
        )
    return table


def _label(run: Run, width: int) -> Text:
    from rich.text import Text

    label = Text()
    paused = is_paused(run)
    label.append(run.name, style="bold yellow" if paused else "bold red" if run.error else "bold")
    label.append(f"  {run.kind}", style="cyan")
    label.append(f"  {format_latency(run.latency)}")
    if run.input_tokens is not None or run.output_tokens is not None:
        label.append(f" · {format_tokens(run)} tok", style="magenta")
    if run.cost is not None:
        label.append(f" · {format_cost(run.cost)}", style="magenta")
    if run.model:
        label.append(f" · {run.model}" + (f" ({run.provider})" if run.provider else ""), style="dim")
    if run.tags:
        label.append(f" · tags: {', '.join(run.tags)}", style="dim")
    label.append("\n")
    label.append("in  ", style="dim")
    label.append(preview(run.inputs, width), style="dim")
    if paused:
        label.append("\n")
        label.append("⏸ paused: interrupt() waits for Command(resume=…)", style="yellow")
    elif run.error:
        label.append("\n")
        label.append(f"✗ {run.error}", style="red")
    else:
        label.append("\n")
        label.append("out ", style="dim")
        label.append(preview(run.outputs, width), style="dim")
    return label


def trace_tree(runs: Sequence[Run], *, width: int = 80) -> Tree:
    """The runs of one trace as a tree (children in start order), each with its kind, latency,
    tokens and cost, a one-line preview of its inputs and outputs, and its error in red."""
    from rich.text import Text
    from rich.tree import Tree

    known = {run.id for run in runs}
    children: dict[str | None, list[Run]] = {}
    for run in runs:
        parent = run.parent_id if run.parent_id in known else None
        children.setdefault(parent, []).append(run)
    for siblings in children.values():
        siblings.sort(key=lambda r: r.start_time)
    tops = children.get(None, [])
    root = tops[0] if len(tops) == 1 else None
    tree = Tree(_label(root, width) if root else Text(f"trace ({len(runs)} runs)"), guide_style="dim")

    def add(node: Tree, run: Run) -> None:
        for child in children.get(run.id, []):
            add(node.add(_label(child, width)), child)

    if root is not None:
        add(tree, root)
    else:
        for top in tops:
            add(tree.add(_label(top, width)), top)
    return tree


def failure_origin(runs: Sequence[Run]) -> Run | None:
    """The failed run where a trace's failure started: one with a stack trace and no failed child
    (its parents failed only because it did); the earliest when several branches failed."""
    failed = [run for run in runs if run.error and not is_paused(run)]  # a paused graph node did not fail
    failed_parents = {run.parent_id for run in failed}
    origins = [run for run in failed if run.stacktrace and run.id not in failed_parents]
    return min(origins, key=lambda r: r.start_time) if origins else None


def checkpoints_table(runs: Sequence[Run]) -> Table | None:
    """The checkpoints a ``maru.graph`` run saved (step, source, writers, next, when, by which
    run), read from its trace; ``None`` for a trace with no graph run."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    summary = graph_summary(runs)
    if summary is None or not summary["checkpoints"]:
        return None
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  title=f"checkpoints · thread {', '.join(summary['threads'])}", title_justify="left")
    for column in ("step", "source", "written by", "next", "saved", "by run"):
        table.add_column(column, justify="right" if column == "step" else "left", no_wrap=column != "written by")
    for cp in summary["checkpoints"]:
        table.add_row(
            str(cp["step"]),
            Text(str(cp["source"]), style="yellow" if cp["source"] == "pending" else ""),
            Text(", ".join(cp["writers"]) or "—"),
            Text(", ".join(cp["next"]) or "END"),
            format_time(cp["created_at"]) if cp["created_at"] else "—",
            Text(str(cp["run_name"]), style="dim"),
        )
    return table
