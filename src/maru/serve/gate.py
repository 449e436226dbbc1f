"""The ASGI gate in front of every route: a request id for each request, the body's size and time
limits, a body that is JSON text, and a JSON 500 (logged masked) for any failure the routes let out.

It works on raw ASGI messages, below FastAPI, because the limits must hold before anything reads
the body, a refused body must be drained so that the client reads the 413 instead of a reset, and
an exception that reaches the ASGI server would be logged there with its secrets and answered in
plain text.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .encoding import dumps
from .json_body import json_body_problem

__all__ = ["RequestGate", "request_id_of", "send_json"]

log = logging.getLogger("maru.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
DRAIN_LIMIT_SECONDS = 5.0


def request_id_of(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = uuid.uuid4().hex
    return str(rid)


class RequestGate:
    """ASGI middleware in front of every route: gives each request an id (``X-Request-ID``),
    reads the body within its size and time limits, refuses a body that is not JSON text, and
    turns any failure that escapes the routes into a JSON 500 whose log is masked.

    The size limit is checked twice: against ``Content-Length`` when the client declares one, and
    by counting the bytes actually received (a chunked body, or a client whose header lies). The
    body is read here, up to the limit and within ``body_timeout_s``, and replayed to the app. A
    refused body is drained (up to 16 MiB or 5 s) before the 413 goes out, so the client, still
    writing, reads the answer instead of a reset connection.
    """

    def __init__(self, app: Any, max_body_bytes: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", request_id_of(scope).encode("ascii"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
                started = True
            await send(message)

        try:
            await self._serve(scope, receive, send_with_id)
        except Exception as exc:
            await self._failed(scope, exc, send_with_id if not started else None)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        problem = json_body_problem(body) if _is_json(scope) else None
        if problem is not None:
            details = [{"loc": ["body"], "msg": problem, "type": "json_invalid"}]
            await send_json(send, 422, _error("validation_error", problem, details))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as ASGI says

        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or ``None`` once a refusal (413, 408) has been sent or the client left."""
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _drain(receive)
            await self._too_large(send, declared)
            return None
        body = bytearray()
        deadline = time.monotonic() + self.body_timeout_s
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                await self._too_slow(send, len(body))
                return None
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                if more:
                    await _drain(receive)
                await self._too_large(send, declared)
                return None
        return bytes(body)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more than that"
        message = f"the request body is limited to {self.max_body_bytes} bytes; got {size}"
        await send_json(send, 413, _error("request_too_large", message))

    async def _too_slow(self, send: Send, received: int) -> None:
        message = (
            f"the request body did not arrive within {self.body_timeout_s:g} s (got {received} bytes); "
            "send the whole body at once"
        )
        await send_json(send, 408, _error("request_timeout", message))

    async def _failed(self, scope: Scope, exc: Exception, send: Send | None) -> None:
        """A failure no route answered: logged (masked by the ``maru.serve`` logger's filter) and,
        when no response has started, answered with a JSON 500 naming the request id."""
        rid = request_id_of(scope)
        log.error("%s %s failed (request %s)", scope.get("method"), scope.get("path"), rid, exc_info=exc)
        if send is not None:
            message = f"the server failed while answering; its log has the details under request id {rid}"
            await send_json(send, 500, _error("internal_error", message))


def _error(type_: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


async def send_json(send: Send, status: int, payload: Any) -> None:
    """Answer with ``payload`` as JSON and close the connection (the body may be unread)."""
    content = dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI will parse the body as JSON: no content type, or a JSON one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of a refused body, within bounds."""
    drained = 0
    deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
    while drained < DRAIN_LIMIT_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
