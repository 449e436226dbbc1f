"""``maru serve module:object``: serve a runnable over HTTP (invoke, batch, SSE streams) until
SIGTERM or Ctrl-C, letting requests in flight finish."""

from __future__ import annotations

from typing import Annotated

import typer

from ._extras import needs_extra
from ._shared import ensure_port_free, fail
from .run import load_runnable


@needs_extra("serve", "maru serve")
def serve_command(
    target: Annotated[str, typer.Argument(help="What to serve, as module:object (a runnable or a function).")],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port (0: any free one).")] = 8000,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body accepted; larger ones get 413.")
    ] = 1_000_000,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            "--graceful-timeout",
            min=0,
            help="On SIGTERM/Ctrl-C, seconds to let requests and streams in flight finish.",
        ),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    kwarg: Annotated[
        list[str] | None,
        typer.Option(
            "--kwarg",
            metavar="NAME",
            help="Let requests pass this keyword argument to the call in their \"kwargs\" (repeatable). "
            "None is allowed by default.",
        ),
    ] = None,
    expose_server_metadata: Annotated[
        bool,
        typer.Option(
            "--expose-server-metadata",
            help="Let /stream_events show the tags and metadata the served steps set themselves "
            "(with_config); by default a client sees only what its request sent. Secrets stay masked.",
        ),
    ] = False,
) -> None:
    """Serve a runnable over HTTP: POST /invoke, /batch, /stream, /stream_events (server-sent
    events); GET /health; the OpenAPI document at /openapi.json and /docs."""
    import fastapi  # noqa: F401 - a missing extra is reported before the target is imported
    import uvicorn  # noqa: F401

    from ..serve.kwargs import check_allowed_kwargs
    from ..serve.server import serve as run_server

    try:
        allowed = check_allowed_kwargs(kwarg or ())
    except ValueError as exc:
        fail(f"--kwarg: {exc}")
    port = ensure_port_free(host, port)
    step = load_runnable(target)
    run_server(
        step,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        allowed_kwargs=allowed,
        expose_server_metadata=expose_server_metadata,
        timeout_graceful_shutdown=graceful_timeout,
        log_level=log_level,
    )
