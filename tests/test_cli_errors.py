"""Errors a user can cause reach the terminal as one message that says what was wrong and what to
do, never a traceback; ``--debug`` (or ``MARU_DEBUG=1``) shows the traceback instead."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maru import cli
from maru.cli import chat as cli_chat
from maru.errors import IndexingError, PromptError

HERE = Path(__file__).resolve().parent
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL", "MARU_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(HERE))


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(cli.app, list(args), input=input)


def one_message(result: Any, code: int) -> str:
    """The error's text, after checking it came as a message with exit ``code``, not a traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    return str(result.stderr)


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port something already listens on (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- maru run
def test_run_with_a_missing_prompt_variable_is_one_message() -> None:
    err = one_message(invoke("run", "cli_fixtures:travel_prompt", "--input", '{"city": "Busan"}'), 2)
    assert "missing variable(s) 'season'" in err and "--input" in err


def test_debug_shows_the_traceback() -> None:
    result = invoke("--debug", "run", "cli_fixtures:travel_prompt", "--input", '{"city": "Busan"}')
    assert isinstance(result.exception, PromptError)


def test_maru_debug_env_shows_the_traceback_in_a_real_process() -> None:
    argv = [sys.executable, "-m", "maru.cli", "run", "cli_fixtures:refuse", "--input", "1"]
    plain = subprocess.run(argv, capture_output=True, text=True, cwd=HERE, timeout=60)
    assert plain.returncode == 1 and plain.stderr.startswith("error: the record manager")
    assert "Traceback" not in plain.stderr and len(plain.stderr.splitlines()) == 1
    debug = subprocess.run(argv, capture_output=True, text=True, cwd=HERE, timeout=60, env={
        **{k: v for k, v in __import__("os").environ.items()}, "MARU_DEBUG": "1"})
    assert "Traceback" in debug.stderr and "IndexingError" in debug.stderr


def test_a_maru_error_from_a_step_is_one_message_with_exit_1() -> None:
    err = one_message(invoke("run", "cli_fixtures:refuse", "--input", "1"), 1)
    assert "cleanup='full'" in err
    assert isinstance(invoke("--debug", "run", "cli_fixtures:refuse", "--input", "1").exception, IndexingError)


def test_a_missing_file_named_in_the_input_is_one_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    err = one_message(invoke("run", "cli_fixtures:read_text", "--input", f'"{missing}"'), 1)
    assert f"{missing}: No such file or directory" in err


def test_a_bug_in_the_users_step_keeps_its_traceback() -> None:
    assert isinstance(invoke("run", "cli_fixtures:broken", "--input", "1").exception, RuntimeError)


# ----------------------------------------------------------------------------- maru train plot
def test_train_plot_takes_the_metrics_file_itself(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,name,value\n1,loss,0.5\n2,loss,0.25\n", encoding="utf-8")
    result = invoke("train", "plot", str(metrics))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_train_plot_of_a_binary_file_is_one_message(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    blob = tmp_path / "weights.csv"
    blob.write_bytes(b"\x89PNG\x00\xff\xfe")
    err = one_message(invoke("train", "plot", str(blob)), 2)
    assert "is not a metrics CSV" in err and "run directory" in err


def test_train_plot_of_a_missing_path_is_one_message(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert "no metrics file" in one_message(invoke("train", "plot", str(tmp_path / "nope")), 2)


# ----------------------------------------------------------------------------- maru chat
def test_chat_with_redis_down_is_one_message(closed_port: int) -> None:
    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:{closed_port}/0"
    err = one_message(invoke("chat", "--session", "trip", "--history", url, input="hi\n"), 2)
    assert "cannot reach the history store" in err and str(closed_port) in err
    assert "--history PATH.sqlite" in err


@pytest.mark.parametrize("url", ["notaurl", "localhost:11434/v1", "ftp://host/v1"])
def test_chat_with_a_base_url_that_is_no_url_names_it(url: str) -> None:
    err = one_message(invoke("chat", "--base-url", url, input="hi\n"), 2)
    assert repr(url) in err and "http://localhost:11434/v1" in err


def test_a_chat_turn_that_cannot_connect_names_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    pytest.importorskip("openai")
    from maru.models import OpenAIChat

    url = f"http://127.0.0.1:{closed_port}/v1"
    model = OpenAIChat(model="m", base_url=url, max_retries=0, timeout=5)
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, base_url: model)
    result = invoke("chat", input="hi\n/exit\n")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert f"error: no answer from m (local server {url}): APIConnectionError" in result.output


# ----------------------------------------------------------------------------- ports in use
def test_serve_on_a_port_in_use_says_so_before_any_url(listening_port: int) -> None:
    pytest.importorskip("uvicorn")
    result = invoke("serve", "cli_fixtures:shout", "--port", str(listening_port))
    err = one_message(result, 2)
    assert f"port {listening_port} on 127.0.0.1 is in use" in err and "--port" in err
    assert "http://" not in result.output


def test_trace_ui_on_a_port_in_use_says_so_before_any_url(listening_port: int, tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    from maru.tracing.store import RunStore

    RunStore(tmp_path / "traces.sqlite").close()
    result = invoke("trace", "ui", "--db", str(tmp_path / "traces.sqlite"), "--port", str(listening_port))
    assert f"port {listening_port} on 127.0.0.1 is in use" in one_message(result, 2)
    assert "http://" not in result.output


def test_an_unknown_host_is_one_message() -> None:
    pytest.importorskip("uvicorn")
    err = one_message(invoke("serve", "cli_fixtures:shout", "--host", "no-such-host.invalid"), 2)
    assert "cannot listen on 'no-such-host.invalid'" in err
