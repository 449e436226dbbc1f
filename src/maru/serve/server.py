"""Run a served runnable with uvicorn, shutting down gracefully."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["serve", "server_config"]


def serve(
    runnable_or_target: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_body_bytes: int = 1_000_000,
    title: str | None = None,
    allowed_kwargs: Iterable[str] | Mapping[str, Any] = (),
    expose_server_metadata: bool = False,
    timeout_graceful_shutdown: float | None = 30.0,
    header_timeout_s: float = 10.0,
    body_timeout_s: float = 30.0,
    **uvicorn_options: Any,
) -> None:
    """Serve a runnable (or ``"module:object"``) over HTTP until SIGTERM or SIGINT (Ctrl-C).

    On either signal the server stops accepting connections, lets requests and streams in flight
    finish — for at most ``timeout_graceful_shutdown`` seconds, after which they are cancelled — and
    returns normally (a second Ctrl-C forces the exit). ``allowed_kwargs`` names the keyword
    arguments requests may pass to the call (none by default) and ``expose_server_metadata`` lets
    ``/stream_events`` show the steps' own tags and metadata (see
    :func:`~maru.serve.app.create_app`). A connection whose request headers have not arrived within
    ``header_timeout_s`` is closed; a body not arrived within ``body_timeout_s`` gets 408. Every
    log record the server writes (uvicorn's included) has its secrets masked.
    ``uvicorn_options`` go to ``uvicorn.Config`` (``log_level``, ``access_log``, ``ssl_certfile`` …).
    """
    import uvicorn

    from .app import create_app

    if isinstance(runnable_or_target, str):
        from .target import load_target

        runnable_or_target = load_target(runnable_or_target)
    app = create_app(
        runnable_or_target,
        max_body_bytes=max_body_bytes,
        title=title,
        allowed_kwargs=allowed_kwargs,
        expose_server_metadata=expose_server_metadata,
        body_timeout_s=body_timeout_s,
    )
    config = server_config(
        app,
        host=host,
        port=port,
        header_timeout_s=header_timeout_s,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    with _signals_end_normally():
        server.run()


def server_config(app: Any, *, header_timeout_s: float = 10.0, **uvicorn_options: Any) -> Any:
    """The ``uvicorn.Config`` that :func:`serve` runs ``app`` with: the header deadline on its HTTP
    protocol (not for HTTP/2, whose protocol uvicorn picks itself), and log redaction installed
    once uvicorn has configured logging."""
    import uvicorn

    from .logs import install_log_redaction
    from .slow_clients import protocol_with_header_deadline

    if header_timeout_s <= 0:
        raise ValueError(f"header_timeout_s must be positive, got {header_timeout_s}")
    if not uvicorn_options.get("http2"):
        http = uvicorn_options.pop("http", "auto")
        uvicorn_options["http"] = protocol_with_header_deadline(http, header_timeout_s)
    config = uvicorn.Config(app, **uvicorn_options)
    install_log_redaction()
    return config


@contextmanager
def _signals_end_normally() -> Iterator[None]:
    """Once uvicorn has shut down gracefully it raises the signal that stopped it again, so that
    the default action (death by SIGTERM, KeyboardInterrupt) follows. A graceful stop is a normal
    end here: while the server runs, SIGTERM and SIGINT are recorded and ignored by the handlers
    uvicorn falls back to, and the process exits 0."""
    if threading.current_thread() is not threading.main_thread():
        yield  # uvicorn installs no handlers off the main thread either
        return
    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, _ignore) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: Any) -> None:
    pass
