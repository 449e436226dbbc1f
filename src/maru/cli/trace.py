"""``maru trace ls / show ID / ui``: browse recorded traces in the terminal or a local web page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._extras import needs_extra
from ._shared import command_group, ensure_port_free, fail, make_console

if TYPE_CHECKING:
    from ...tracing.store import RunStore

trace_app = command_group(
    "trace", help="Browse recorded traces: list them, show one as a tree, or open the web viewer."
)

TRACE_DB_HELP = (
    "The trace store (the file maru.tracing.enable() writes; default traces.sqlite in $MARU_HOME, "
    "else in the project's .maru folder)."
)
TraceDb = Annotated[
    Path | None, typer.Option("--db", envvar="MARU_TRACE_DB", show_envvar=True, help=TRACE_DB_HELP)
]


def _open_trace_store(db: Path | None) -> RunStore:
    """Open an existing trace store for reading; a missing or unusable one exits 2 with why."""
    from ..errors import TraceStoreError
    from ..tracing.store import RunStore

    try:
        return RunStore(db, create=False)
    except TraceStoreError as exc:
        fail(str(exc))


def _time_option(value: str | None, option: str) -> float | None:
    from ..tracing.store import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        fail(f"{option}: {exc}")


@trace_app.command("ls")
def trace_ls(
    db: TraceDb = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only traces whose name contains this.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only traces with a run carrying this tag.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Started at or after: 30m, 1h, 2d, an ISO date-time or epoch seconds.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Started before (same forms as --since).")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces in which some run failed.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="How many traces to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (newest first).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the root runs as JSON lines.")] = False,
) -> None:
    """List recorded traces, newest first: started, name, latency, tokens, cost, status, trace id."""
    from ..errors import TraceStoreError
    from ..tracing.render import traces_table

    store = _open_trace_store(db)
    filters: dict[str, Any] = {
        "name": name or None,
        "tag": tag or None,
        "since": _time_option(since, "--since"),
        "until": _time_option(until, "--until"),
        "errors_only": errors,
    }
    try:
        roots = store.list_traces(**filters, limit=limit, offset=offset)
        total = store.count_traces(**filters) if roots or offset else 0
        stats = store.trace_stats(r.trace_id for r in roots)
    except TraceStoreError as exc:
        fail(str(exc))
    if as_json:
        for root in roots:
            typer.echo(json.dumps(root.to_dict(), ensure_ascii=False, default=str))
        return
    console = make_console()
    if not roots:
        filtered = any(v for v in filters.values())
        console.print(f"No traces{' match' if filtered else ' yet'} in {store.path}.", markup=False)
        return
    shown = f"{offset + 1}–{offset + len(roots)} of {total}" if offset else f"{len(roots)} of {total}"
    caption = f"{shown} traces in {store.path}"
    console.print(traces_table(roots, stats, caption=caption))


@trace_app.command("show")
def trace_show(
    trace_id: Annotated[str, typer.Argument(help="A trace id, or a prefix of one that only it starts with.")],
    db: TraceDb = None,
    width: Annotated[int, typer.Option("--width", min=10, help="Characters of input/output preview per run.")] = 80,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace's runs as JSON.")] = False,
) -> None:
    """Show one trace as a tree of its runs: kind, latency, tokens and cost, inputs and outputs,
    errors in red."""
    from rich.text import Text

    from ..errors import TraceStoreError
    from ..tracing.graphs import is_paused
    from ..tracing.render import (
        checkpoints_table,
        failure_origin,
        format_latency,
        format_time,
        trace_tree,
    )

    store = _open_trace_store(db)
    try:
        matches = store.match_trace_ids(trace_id, limit=6)
        if not matches:
            fail(f"no trace {trace_id!r} in {store.path}.", "maru trace ls lists the traces there.")
        if len(matches) > 1:
            listed = ", ".join(matches[:5]) + (" …" if len(matches) > 5 else "")
            fail(f"{trace_id!r} is the start of several trace ids: {listed}", "Give more of the id.")
        runs = store.get_trace(matches[0])
    except TraceStoreError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], ensure_ascii=False, indent=2, default=str))
        return
    console = make_console()
    roots = [r for r in runs if r.parent_id is None]
    failed = sum(1 for r in runs if r.error and not is_paused(r))
    header = Text(f"trace {matches[0]}", style="bold")
    if roots:
        header.append(f" · started {format_time(roots[0].start_time)} · {format_latency(roots[0].latency)}")
    header.append(f" · {len(runs)} run{'s' if len(runs) != 1 else ''}")
    if failed:
        header.append(f" · {failed} failed", style="red")
    console.print(header)
    console.print(trace_tree(runs, width=width))
    checkpoints = checkpoints_table(runs)
    if checkpoints is not None:
        console.print(checkpoints)
    origin = failure_origin(runs)
    if origin is not None:
        console.print(Text(f"\nwhere it failed: {origin.name} ({origin.id})", style="bold red"))
        console.print(Text(origin.stacktrace or "", style="red"))


@trace_app.command("ui")
@needs_extra("trace", "maru trace ui")
def trace_ui(
    db: TraceDb = None,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port (0: any free one).")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on. Traces hold prompts and outputs: keep it local.")
    ] = "127.0.0.1",
) -> None:
    """Open the web viewer of a trace store: traces with latency, tokens and cost, filters by name,
    tag and time, each trace's run tree with inputs, outputs and errors."""
    import fastapi  # noqa: F401 - a missing extra is reported before the store is opened
    import uvicorn

    from ..tracing.viewer import create_viewer_app

    store = _open_trace_store(db)
    port = ensure_port_free(host, port)
    viewer = create_viewer_app(store)
    console = make_console()
    shown_host = f"[{host}]" if ":" in host else host
    console.print(f"maru trace viewer for {store.path}: http://{shown_host}:{port}/  (Ctrl-C stops it)", markup=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach it can read these traces.",
            soft_wrap=True,
        )
    uvicorn.run(viewer, host=host, port=port, log_level="warning")
