"""Shared pieces of the cache tests: requests and responses, a deterministic embedding, a fake clock,
and a real ``redis-server`` started for the session on a free loopback port."""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from maru.cache import CachedResponse, CacheRequest
from maru.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolCallChunk,
    Usage,
)
from maru.models import Embeddings


def request(question: str, *, system: str = "be brief", **params) -> CacheRequest:
    params.setdefault("model", "m-1")
    return CacheRequest(params["model"], [SystemMessage(system), HumanMessage(question)], params)


def response(text: str = "answer") -> CachedResponse:
    return CachedResponse(AIMessage(text, id="r1", usage=Usage(5, 2)))


def streamed_response() -> CachedResponse:
    """A stream of text and two tool calls in pieces, usage on the last chunk — the awkward case."""
    chunks = [
        AIMessageChunk("Let me ", id="run-1"),
        AIMessageChunk("check. ", id="run-1"),
        AIMessageChunk(
            "", id="run-1", tool_call_chunks=[ToolCallChunk(0, "call_a", "weather", '{"city": ')]
        ),
        AIMessageChunk("", id="run-1", tool_call_chunks=[ToolCallChunk(0, "", "", '"서울"}')]),
        AIMessageChunk(
            "", id="run-1", tool_call_chunks=[ToolCallChunk(1, "call_b", "time", '{"tz": "KST"}')]
        ),
        AIMessageChunk(
            "",
            id="run-1",
            usage=Usage(12, 30, 4),
            response_metadata={"finish_reason": "tool_calls"},
        ),
    ]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return CachedResponse(total.to_message(), chunks)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HashEmbeddings(Embeddings):
    """Bag of words hashed into 512 buckets, L2-normalised: deterministic, and close for texts that
    share most words ("capital of France" ~ "capital of Spain"), which is what the guard is for.
    Counts its calls."""

    dim = 512

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _vector(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.extend(texts)
        return [self._vector(t) for t in texts]


# --------------------------------------------------------------------------- Redis
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Run a private, memory-only redis-server on ``port`` (a free one by default) and yield its
    URL; stop it afterwards."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not on PATH, so the Redis cache tests cannot run. Install it with "
            "`make test` (which runs scripts/services.sh) or `bash scripts/services.sh` "
            "(apt-get install redis-server).",
            pytrace=False,
        )
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"redis-server exited with {proc.returncode}:\n{out[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {port} did not answer PING within 10 s")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_db(redis_url: str) -> str:
    """The session's Redis, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url
