"""A real chat-completions server on 127.0.0.1 for testing ``OpenAIChat`` over a real socket.

Tests script what the server answers (``server.script(Reply(...), Status(429), ...)``) and read what
it received (``server.requests``). Unscripted requests get ``server.default`` (an echo of the last
user message unless a test changes it).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "sk-test-0123456789-secret"
MODEL = "fake-model"


@dataclass
class Reply:
    """A successful completion: JSON, or SSE when the request asked to stream."""

    content: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(
        default_factory=list
    )  # (id, name, args)
    usage: tuple[int, int, int] = (11, 7, 0)  # prompt, completion, cached
    id: str = "chatcmpl-fake-1"


@dataclass
class Status:
    """An error response. ``retry-after-ms`` keeps the SDK's retry backoff short in tests."""

    code: int
    message: str = "something went wrong"
    headers: dict[str, str] = field(default_factory=lambda: {"retry-after-ms": "5"})


@dataclass
class Slow:
    """Wait before answering (to trigger client timeouts)."""

    seconds: float
    then: Reply = field(default_factory=Reply)


@dataclass
class EmptyStream:
    """A 200 event stream that closes before its first event (llama.cpp's server does this when it
    cannot stream a request)."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeChatServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queue: list[Any] = []
        self.requests: list[Received] = []
        self.default: Any = None
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def script(self, *responses: Any) -> None:
        with self._lock:
            self.queue.extend(responses)

    def reset(self) -> None:
        with self._lock:
            self.queue.clear()
            self.requests.clear()
            self.default = None

    def next_response(self, body: dict[str, Any]) -> Any:
        with self._lock:
            if self.queue:
                return self.queue.pop(0)
        if self.default is not None:
            return self.default
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return Reply(content=f"echo: {users[-1]['content'] if users else ''}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeChatServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.requests.append(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        response = self.fake.next_response(body)
        try:
            if isinstance(response, Slow):
                time.sleep(response.seconds)
                response = response.then
            if isinstance(response, EmptyStream):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
            elif isinstance(response, Status):
                self._json(
                    response.code,
                    {"error": {"message": response.message, "type": "test"}},
                    response.headers,
                )
            elif body.get("stream"):
                self._sse(response, body)
            else:
                self._json(200, _completion(response, body))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            pass

    def _json(
        self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, reply: Reply, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for event in _stream_events(reply, body):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _usage(reply: Reply) -> dict[str, Any]:
    prompt, completion, cached = reply.usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for cid, name, args in reply.tool_calls
        ]
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model", MODEL),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(reply),
    }


def _stream_events(reply: Reply, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": body.get("model", MODEL),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield event({"role": "assistant", "content": ""})
    for piece in re.findall(r"\s*\S+|\s+", reply.content):
        yield event({"content": piece})
    for index, (cid, name, args) in enumerate(reply.tool_calls):
        yield event(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )
        text = json.dumps(args)
        third = max(1, len(text) // 3)
        for start in range(0, len(text), third):  # arguments split mid-token, as real servers do
            yield event(
                {
                    "tool_calls": [
                        {"index": index, "function": {"arguments": text[start : start + third]}}
                    ]
                }
            )
    yield event({}, "tool_calls" if reply.tool_calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        final = event({})
        final["choices"] = []
        final["usage"] = _usage(reply)
        yield final


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    yield server
    server.close()


@pytest.fixture
def server(_fake_server: FakeChatServer) -> Iterator[FakeChatServer]:
    _fake_server.reset()
    yield _fake_server
    _fake_server.reset()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not see (or send) a developer's real keys and endpoints."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL"):
        monkeypatch.delenv(name, raising=False)
