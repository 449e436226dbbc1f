"""A real uvicorn server on a loopback socket, and a server-sent-events reader."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


@contextmanager
def live_server(app: Any, config: Any = None) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread on 127.0.0.1 (a port the kernel picks) and
    yield its base URL; the server is always stopped and its thread joined. ``config``, a
    ``uvicorn.Config``, replaces the default one."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        config or uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test server thread died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start within 30 s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"


def asgi_request(app: Any, method: str, path: str, **options: Any) -> Any:
    """One request to ``app`` in process (httpx's ASGI transport; a failure the app lets out
    is answered as the ASGI server would, not raised); ``options`` go to ``httpx.request``."""
    import asyncio

    async def go() -> Any:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **options)

    return asyncio.run(go())


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` pairs from the lines of a ``text/event-stream`` (data parsed as JSON)."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if event is not None or data:
                yield event or "message", json.loads("\n".join(data)) if data else None
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if event is not None or data:
        yield event or "message", json.loads("\n".join(data)) if data else None


def read_sse(response: Any) -> list[tuple[str, Any]]:
    return list(parse_sse(response.iter_lines()))


@pytest.fixture
def client() -> Iterator[Any]:
    with httpx.Client(timeout=30) as c:
        yield c
