"""The HTTP face of a runnable: a FastAPI app with invoke, batch and two server-sent-event streams.

Endpoints (bodies are JSON; every response carries an ``X-Request-ID`` header):

- ``POST /invoke`` ``{"input", "config"?, "kwargs"?, "session_id"?}`` → ``{"output"}``
- ``POST /batch`` ``{"inputs", "config"?, "kwargs"?, "session_id"?, "return_exceptions"?,
  "max_concurrency"?}`` → ``{"outputs"}``; with ``return_exceptions`` a failed item is
  ``{"error": {"type", "message"}}``
- ``POST /stream`` → ``text/event-stream``: ``event: data`` per chunk, then ``event: end``; a
  failure after the first chunk is ``event: error`` and the stream closes. A failure before the
  first chunk is an ordinary JSON error response with its status.
- ``POST /stream_events`` → ``text/event-stream`` of the run events (``astream_events``), then
  ``end`` (or ``error``)
- for a compiled graph (or an agent built on one), threads: create, run, resume after an
  interrupt, stream, state and history under ``/threads`` (see :mod:`~maru.serve.threads`)
- ``GET /health`` → ``{"status": "ok", "name": ...}``; ``GET /openapi.json`` with the input and
  output types from :func:`maru.serve.schema.infer_types`; ``GET /docs``, Swagger UI served from
  the installed ``swagger-ui-bundle`` package, never a CDN (see :mod:`maru.serve.docs`).

``config`` takes ``tags``, ``metadata`` and ``run_name`` only; the server adds
``metadata["request_id"]``. ``session_id`` is passed as ``config["configurable"]["session_id"]``,
where a history-wrapped runnable reads it. ``kwargs`` reach the runnable's call only for the names
the server allows (``allowed_kwargs``, ``maru serve --kwarg NAME``): by default a client cannot pass
keywords at all, so it cannot override, say, a model's parameters.

The pieces live in their own modules: :mod:`~maru.serve.bodies` (the request and response models,
built per app), :mod:`~maru.serve.routes` (the endpoints, plain functions reading
``request.app.state``), :mod:`~maru.serve.handlers` (validation and HTTP errors in the same JSON
shape), :mod:`~maru.serve.gate` (request ids and the body size limit) and :mod:`~maru.serve.docs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .bodies import ServeModels, build_models
from .gate import RequestGate
from .kwargs import check_allowed_kwargs

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..core.runnable import Runnable

__all__ = ["check_allowed_kwargs", "create_app"]


def create_app(
    runnable: Any,
    *,
    max_body_bytes: int = 1_000_000,
    title: str | None = None,
    input_type: Any = None,
    output_type: Any = None,
    allowed_kwargs: Iterable[str] | Mapping[str, Any] = (),
    expose_server_metadata: bool = False,
    body_timeout_s: float = 30.0,
) -> FastAPI:
    """A FastAPI app serving ``runnable`` (a runnable, or a function made one).

    ``max_body_bytes`` caps request bodies (413 beyond it, whether or not the client declared a
    ``Content-Length``). ``input_type`` / ``output_type`` override what
    :func:`~maru.serve.schema.infer_types` reads from the runnable, for validation and the OpenAPI
    document (message classes may appear in them: they travel as message dicts).
    ``allowed_kwargs`` names the keyword arguments a request's ``kwargs`` may pass to the call;
    any other is refused with 422. Reserved names (``input``, ``config`` …) cannot be allowed. Their
    types come from the served function's annotations, or from ``allowed_kwargs`` given as a
    mapping of name to type (``{"temperature": float}``); the document shows them and FastAPI
    validates them.
    ``/stream_events`` shows a client only the tags and metadata its request sent, unless
    ``expose_server_metadata`` lets the steps' own (``with_config``) through; events and the
    server's log records are masked either way (:mod:`maru.redact`). A body that has not fully
    arrived within ``body_timeout_s`` seconds is answered with 408.
    """
    # FastAPI is optional (maru[serve]): only building an app needs it, not importing this module.
    from ..core import coerce
    from .docs import add_docs
    from .handlers import add_error_handlers
    from .logs import install_log_redaction
    from .routes import add_routes
    from .threads import add_thread_routes

    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
    if body_timeout_s <= 0:
        raise ValueError(f"body_timeout_s must be positive, got {body_timeout_s}")
    install_log_redaction(("maru.serve",))  # the app's own records; serve() covers uvicorn's too
    allowed = check_allowed_kwargs(allowed_kwargs)
    step = coerce(runnable)
    types = dict(allowed_kwargs) if isinstance(allowed_kwargs, Mapping) else None
    models = build_models(
        step, input_type=input_type, output_type=output_type, allowed_kwargs=allowed, kwarg_types=types
    )
    app = _fastapi_app(step, title)
    _store_state(app, step, models, allowed, expose_server_metadata)
    app.add_middleware(RequestGate, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s)
    add_docs(app)
    add_routes(app, models)
    add_thread_routes(app, step)
    add_error_handlers(app)
    return app


def _fastapi_app(step: Runnable[Any, Any], title: str | None) -> FastAPI:
    from fastapi import FastAPI

    from .._version import __version__

    return FastAPI(
        title=title or f"maru: {step.name}",
        version=__version__,
        description=(
            f"Serves the runnable `{step.name}` with maru. Streams are server-sent events; errors "
            'are `{"error": {"type", "message"}}` with a 4xx/5xx status.'
        ),
        docs_url=None,  # served by add_docs from local files: FastAPI's page loads a CDN
        redoc_url=None,  # ReDoc has no offline bundle here; a page that needs the internet is worse than none
    )


def _store_state(
    app: FastAPI, step: Runnable[Any, Any], models: ServeModels, allowed: tuple[str, ...], expose: bool
) -> None:
    """What the routes read from ``request.app.state``."""
    app.state.runnable = step
    app.state.models = models
    app.state.input_type = models.input_type
    app.state.output_type = models.output_type
    app.state.allowed_kwargs = allowed
    app.state.expose_server_metadata = expose
