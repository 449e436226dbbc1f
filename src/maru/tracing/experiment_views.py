"""The viewer's experiments page (``/experiments``) and its API, added by one call in
:func:`~maru.tracing.viewer.create_viewer_app`:

- ``GET /api/experiments`` — every experiment, newest first, with its config and mean scores.
- ``GET /api/experiments/compare?name=A&name=B`` — up to four experiments side by side: their
  summaries, and per question each one's scores, answer, ranking, citation checks, judgements
  (with reasoning) and trace id (404 naming the experiments there when one is unknown).
- ``GET /experiments`` — the page (``static/experiments.html`` and ``experiments.js``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .store import RunStore

__all__ = ["experiment_routes"]

MAX_COMPARED = 4


def experiment_routes(app: FastAPI, store: RunStore, static: Path, clean: Any) -> None:
    """Add the experiments API and page; ``clean`` makes values JSON that browsers parse."""
    from fastapi import HTTPException, Query
    from fastapi.responses import FileResponse, JSONResponse

    from ..errors import EvaluationError

    @app.get("/api/experiments", response_model=None)
    def list_experiments() -> Any:
        return JSONResponse(clean({"experiments": [e.to_dict() for e in store.experiments.all()]}))

    @app.get("/api/experiments/compare", response_model=None)
    def compare_experiments(name: list[str] = Query(..., min_length=1)) -> Any:  # noqa: B008 - FastAPI's idiom
        if len(name) > MAX_COMPARED:
            raise HTTPException(422, f"compare at most {MAX_COMPARED} experiments at a time")
        try:
            return JSONResponse(clean(store.experiments.compare(name)))
        except EvaluationError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/experiments", include_in_schema=False, response_model=None)
    def experiments_page() -> Any:
        return FileResponse(static / "experiments.html", media_type="text/html")
