"""The ASGI gate in front of every route: a request id for each request, and the body size limit.

It works on raw ASGI messages, below FastAPI, because the limit must hold before anything reads
the body, and a refused body must be drained so that the client reads the 413 instead of a reset.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .encoding import dumps

__all__ = ["RequestGate", "request_id_of"]

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
    """ASGI middleware in front of every route: gives each request an id (``X-Request-ID``) and
    enforces the body size limit.

    The limit is checked twice: against ``Content-Length`` when the client declares one, and by
    counting the bytes actually received (a chunked body, or a client whose header lies). The body
    is read here, up to the limit, and replayed to the app. A refused body is drained (up to
    16 MiB or 5 s) before the 413 goes out, so the client, still writing, reads the answer instead
    of a reset connection.
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", request_id_of(scope).encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send_with_id)
            return

        limit = self.max_body_bytes
        declared = _content_length(scope)
        body = bytearray()
        more = True
        if declared is None or declared <= limit:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    break
        if (declared is not None and declared > limit) or len(body) > limit:
            if more:
                await _drain(receive)
            await self._too_large(send_with_id, declared)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as ASGI says

        await self.app(scope, replay, send_with_id)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more than that"
        payload = {
            "error": {
                "type": "request_too_large",
                "message": f"the request body is limited to {self.max_body_bytes} bytes; got {size}",
            }
        }
        content = dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


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
