"""Fixtures every test folder may use: a private Redis server started by the tests themselves."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from maru._process import stop_process


def _shared_data() -> Path:
    """The project's real test data (``../shared/data``, read in place): ``$MARU_DATA``, else next to
    the checkout, else the workplace's copy, so a clone elsewhere still finds it."""
    import os

    candidates = [os.environ.get("MARU_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data",
                  "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = _shared_data()


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
        stop_process(proc, timeout=10)
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


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        pytest.fail(
            f"PostgreSQL's {name} was not found, so the PostgreSQL tests cannot run. Install it with "
            "`make test` (scripts/services.sh) or apt-get install postgresql.",
            pytrace=False,
        )
    return str(candidates[-1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL cluster in a temporary folder on a free loopback port (trust auth),
    with a database ``maru``; yields its SQLAlchemy URL and removes the cluster afterwards.
    As root the server runs as the ``postgres`` user, since PostgreSQL refuses to run as root."""
    import os
    import tempfile

    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="maru-pg-"))
    data, port = root / "data", free_port()
    if as_user:
        shutil.chown(root, "postgres")
    run = lambda *cmd: subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False)  # noqa: E731
    init = run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    if init.returncode != 0:
        pytest.fail(f"initdb failed:\n{init.stdout[-2000:]}\n{init.stderr[-2000:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = run(_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
    if start.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start:\n{start.stdout}\n{start.stderr}\n{log[-2000:]}")
    try:
        made = run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "maru")
        if made.returncode != 0:
            pytest.fail(f"createdb failed: {made.stderr}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/maru"
    finally:
        run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


# ----------------------------------------------------------------------------- a real browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(what: str) -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright, for ``what`` (named in the failure when
    the browser is missing: a browser test fails rather than skips, so CI cannot pass without it)."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: {what} needs Debian's chromium. "
            "Run `bash scripts/services.sh` (`make test` does) to install it."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ----------------------------------------------------------------------------- a real language model
@pytest.fixture(scope="session")
def llama_server() -> Iterator[object]:
    """llama.cpp's OpenAI-compatible server with the bundled SmolLM2, for the whole session
    (a ``llama_server.LlamaServer``: ``base_url``, ``model``); see tests/llama_server.py."""
    import llama_server as server

    with server.llama_server(server.bundled_gguf()) as running:
        yield running


@pytest.fixture(scope="session")
def local_model() -> Any:
    """``LlamaCppChat`` (call it with options) once the bundled model and llama.cpp are known to be
    there: fails in CI, skips elsewhere, when they are not (see tests/llama_server.py)."""
    import llama_server as server

    server.bundled_gguf(modules=("llama_cpp",))
    from maru.models import LlamaCppChat

    return LlamaCppChat
