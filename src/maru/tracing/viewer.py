"""The web viewer of a :class:`~maru.tracing.store.RunStore`: a JSON API and one page (``maru trace ui``).

- ``GET /api/traces?name=&tag=&since=&until=&errors=&limit=&offset=`` — a page of traces, newest
  first: each root run (without inputs, outputs and stack trace) with ``latency``, ``run_count``, ``error_count``,
  ``paused_count`` (graph nodes waiting on ``interrupt()``, not counted as errors) and
  ``status`` (``"error"`` when the root failed, else ``"ok"``), plus ``total``. ``since`` / ``until``
  take a duration back from now (``1h``), an ISO date-time or epoch seconds.
- ``GET /api/traces/{trace_id}`` — every run of a trace (inputs, outputs, errors and their stack
  traces) by start time; a
  unique prefix of the id is enough (404 when none matches, 409 when several do). For a
  ``maru.graph`` run, ``graph`` holds its thread and the checkpoints it saved (see
  :func:`~maru.tracing.graphs.graph_summary`), else ``null``.
- ``/experiments`` and ``/api/experiments…`` — ``maru eval`` experiments side by side, question by
  question (:mod:`maru.tracing.experiment_views`).
- ``GET /`` and ``/static/*`` — the page: plain HTML, CSS and JavaScript shipped in the package
  (``tracing/static``), nothing loaded from anywhere else (the Content-Security-Policy says so too).

Each group of routes is added by one function (``_trace_routes``, ``_page_routes``); a new page
adds its API the same way, with one call in :func:`create_viewer_app`, and its view in ``app.js``.

The app only reads; it is meant for loopback (``maru trace ui`` binds 127.0.0.1 unless told otherwise),
since traces hold prompts and outputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TraceStoreError
from .experiment_views import experiment_routes
from .graphs import graph_summary, is_paused
from .run import Run
from .store import RunStore, parse_time

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATIC_DIR", "create_viewer_app", "run_to_json"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _clean(value: Any) -> Any:
    """JSON that browsers can parse: NaN and infinities (allowed in Python's JSON) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def run_to_json(run: Run, *, content: bool = True) -> dict[str, Any]:
    """A run as the API sends it: its fields plus ``latency``; ``content=False`` leaves out the
    (possibly large) inputs, outputs and stack trace."""
    data = run.to_dict()
    if not content:
        del data["inputs"], data["outputs"], data["stacktrace"]
    data["latency"] = run.latency
    return _clean(data)


def create_viewer_app(store: RunStore) -> FastAPI:
    """A FastAPI app serving the viewer of ``store`` (needs ``pip install "maru[trace]"``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from .._version import __version__

    app = FastAPI(
        title="maru trace viewer",
        version=__version__,
        docs_url=None,  # the Swagger page loads its assets from a CDN; the viewer loads nothing external
        redoc_url=None,
    )

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(TraceStoreError)
    async def _store_error(request: Request, exc: TraceStoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    _trace_routes(app, store)
    experiment_routes(app, store, STATIC_DIR, _clean)
    _page_routes(app, store)
    return app


def _trace_routes(app: FastAPI, store: RunStore) -> None:
    """The traces: a filtered, paged list, and one trace with all its runs."""
    from fastapi import HTTPException, Query
    from fastapi.responses import JSONResponse

    def _time(value: str | None, name: str) -> float | None:
        try:
            return parse_time(value)
        except ValueError as exc:
            raise HTTPException(422, f"{name}: {exc}") from None

    @app.get("/api/traces", response_model=None)
    def list_traces(
        name: str | None = None,
        tag: str | None = None,
        since: str | None = None,
        until: str | None = None,
        errors: bool = False,
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> Any:
        filters: dict[str, Any] = {
            "name": name or None,
            "tag": tag or None,
            "since": _time(since, "since"),
            "until": _time(until, "until"),
            "errors_only": errors,
        }
        roots = store.list_traces(**filters, limit=limit, offset=offset)
        total = store.count_traces(**filters)
        stats = store.trace_stats(r.trace_id for r in roots)
        traces = []
        for root in roots:
            item = run_to_json(root, content=False)
            counted = stats.get(root.trace_id)
            item["run_count"] = counted.runs if counted else 1
            item["error_count"] = counted.errors if counted else int(root.error is not None)
            item["paused_count"] = _paused(store, root.trace_id) if item["error_count"] else 0
            item["error_count"] -= item["paused_count"]
            item["status"] = "error" if root.error else "ok"
            traces.append(item)
        return JSONResponse({"traces": traces, "total": total, "limit": limit, "offset": offset})

    @app.get("/api/traces/{trace_id}", response_model=None)
    def get_trace(trace_id: str) -> Any:
        matches = store.match_trace_ids(trace_id, limit=5)
        if not matches:
            raise HTTPException(404, f"no trace {trace_id!r} in {store.path}")
        if len(matches) > 1:
            raise HTTPException(
                409, f"{trace_id!r} is the start of several trace ids ({', '.join(matches)} …); give more of it"
            )
        runs = store.get_trace(matches[0])
        graph = graph_summary(runs)
        return JSONResponse(
            {"trace_id": matches[0], "runs": [run_to_json(r) for r in runs], "graph": None if graph is None else _clean(graph)}
        )


def _paused(store: RunStore, trace_id: str) -> int:
    """How many of a trace's failed runs are graph nodes that paused (read only for a trace with errors)."""
    return sum(1 for run in store.get_trace(trace_id) if is_paused(run))


def _page_routes(app: FastAPI, store: RunStore) -> None:
    """The page, its static files, and what it shows in its header."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from .._version import __version__

    @app.get("/api/info", response_model=None)
    def info() -> Any:
        return {"store": str(store.path), "version": __version__}

    @app.get("/", include_in_schema=False, response_model=None)
    def index() -> Any:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
