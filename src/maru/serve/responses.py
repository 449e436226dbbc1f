"""The JSON answers the server writes itself: a payload, or ``{"error": {"type", "message"}}``.

Bodies are encoded with :func:`~maru.serve.encoding.dumps` (any value the runnable returns
travels), not by FastAPI's response models, which only document them.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from .encoding import dumps

__all__ = ["json_error", "json_response"]


def json_response(payload: Any, status: int = 200, headers: Any = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json", headers=headers)


def json_error(
    status: int,
    type_: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Any = None,
) -> Response:
    error: dict[str, Any] = {"type": type_, "message": message}
    if details is not None:
        error["details"] = details
    return json_response({"error": error}, status, headers)
