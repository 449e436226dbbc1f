"""Bodies and clients meant to break the server: text that is not text, nesting that overflows a
parser, a body or headers that never finish. Each gets a clean answer (a JSON 4xx, or a closed
connection) within a bounded time. Loopback only."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from maru import runnable
from maru.serve import create_app
from maru.serve.server import server_config

from .conftest import asgi_request, live_server

echo = runnable(lambda s: s, name="echo")


def post_raw(app: Any, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return asgi_request(app, "POST", "/invoke", content=body, headers=headers)  # type: ignore[no-any-return]


def deep(levels: int) -> bytes:
    return b'{"input": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"input": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"input": "a\\udc00b"}', "lone UTF-16 surrogate"),
        (b'{"input": "\xed\xa0\x80"}', "not valid UTF-8"),
        (b'{"input": "\xff"}', "not valid UTF-8"),
        (deep(100_000), "levels deep"),
        (b"[" * 100_000, "levels deep"),
    ],
)
def test_text_that_is_not_text_and_overdeep_json_are_clean_422s(body: bytes, says: str) -> None:
    r = post_raw(create_app(echo), body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "validation_error" and says in error["message"]


@pytest.mark.parametrize(
    ("body", "output"),
    [
        (b'{"input": "\\ud83d\\ude00 ok"}', "\U0001f600 ok"),  # an escaped pair is one character
        (b'{"input": "[[[[ not brackets \\" ]]]]"}', '[[[[ not brackets " ]]]]'),
        (b"\xef\xbb\xbf" + b'{"input": "bom"}', "bom"),
    ],
)
def test_good_text_passes(body: bytes, output: str) -> None:
    r = post_raw(create_app(echo), body)
    assert r.status_code == 200, r.text
    assert r.json() == {"output": output}


def test_nesting_within_the_limit_passes() -> None:
    r = post_raw(create_app(echo), deep(60))
    assert r.status_code == 200, r.text


def test_an_output_holding_a_lone_surrogate_is_still_valid_json() -> None:
    r = post_raw(create_app(runnable(lambda s: s + "\ud800")), b'{"input": "x"}')
    assert r.status_code == 200
    assert r.json() == {"output": "x\ufffd"}


# ----------------------------------------------------------------------------- slow clients
@pytest.fixture(scope="module")
def impatient_url() -> Iterator[str]:
    app = create_app(echo, body_timeout_s=1.0)
    config = server_config(app, header_timeout_s=1.0, log_level="warning", access_log=False)
    with live_server(app, config) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    data = b""
    deadline = time.monotonic() + limit_s
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_a_body_that_stops_arriving_gets_408_in_time(impatient_url: str) -> None:
    with connect(impatient_url) as sock:
        sock.sendall(b"POST /invoke HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"input\": ")
        start = time.monotonic()
        answer = read_until_closed(sock, 5)
        took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"request_timeout" in answer and took < 3


def test_dripped_headers_are_cut_off_in_time(impatient_url: str) -> None:
    with connect(impatient_url) as sock:
        sock.sendall(b"POST /invoke HTTP/1.1\r\nHost: t\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 5:
            try:
                sock.sendall(b"X-Drip: a\r\n")
            except OSError:
                closed = True
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        took = time.monotonic() - start
    assert closed and took < 3


def test_a_prompt_client_is_not_cut_off(impatient_url: str) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(2):  # the second request on the same connection, after the deadline
            r = client.post(f"{impatient_url}/invoke", json={"input": "hi"})
            assert r.json() == {"output": "hi"}
            time.sleep(0.6)
