"""``maru serve`` as a real process: it serves, and on SIGTERM / SIGINT it stops accepting
connections, finishes the stream in flight and exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from maru import cli

from .conftest import parse_sse

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def maru_command() -> list[str]:
    script = Path(sys.executable).with_name("maru")
    return [str(script)] if script.exists() else [sys.executable, "-m", "maru.cli"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def refuses(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


@contextmanager
def maru_serve(target: str, tmp_path: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``maru serve TARGET`` on a free loopback port (retrying if another process took the
    port first) and yield the process and its base URL; the process never outlives the test."""
    log = tmp_path / "serve.log"
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*maru_command(), "serve", target, "--port", str(port), "--log-level", "warning", *extra],
                cwd=HERE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda: answers(url) or proc.poll() is not None, 60, "the server to start")  # noqa: B023
            if proc.poll() is not None:
                if b"address already in use" in log.read_bytes().lower():
                    continue
                raise AssertionError(f"maru serve exited with {proc.returncode}:\n{log.read_text()}")
            yield proc, url
            return
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    raise AssertionError(f"could not get a free port:\n{log.read_text()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_the_stream_in_flight_finish_then_exits_0(tmp_path: Path, sig: signal.Signals) -> None:
    release = tmp_path / "release"
    with maru_serve("serve_targets:slow_stream", tmp_path, "--graceful-timeout", "60") as (proc, url):
        body = {"input": {"n": 5, "release": str(release)}}
        with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/stream", json=body) as r:
            assert r.status_code == 200
            events = parse_sse(r.iter_lines())
            first = next(events)
            assert first == ("data", "chunk-0 ")
            # The stream is now held open until `release` exists.
            proc.send_signal(sig)
            wait_for(lambda: refuses(url), 30, "the server to stop accepting connections")
            assert proc.poll() is None, "the server quit with a stream in flight"
            release.touch()
            rest = list(events)
        assert rest == [("data", f"chunk-{i} ") for i in range(1, 5)] + [("end", {})]
        assert proc.wait(60) == 0, (tmp_path / "serve.log").read_text()


def test_serve_answers_over_a_real_socket(tmp_path: Path) -> None:
    with maru_serve("serve_targets:typed_chain", tmp_path) as (proc, url):
        r = httpx.post(f"{url}/invoke", json={"input": {"text": "a b"}}, timeout=30)
        assert r.status_code == 200
        assert r.json() == {"output": {"text": "A B", "words": 2}}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_serve_max_body_bytes_option(tmp_path: Path) -> None:
    with maru_serve("serve_targets:punctuate", tmp_path, "--max-body-bytes", "100") as (proc, url):
        assert httpx.post(f"{url}/invoke", json={"input": "hi"}, timeout=30).json() == {"output": "hi!"}
        r = httpx.post(f"{url}/invoke", json={"input": "x" * 200}, timeout=30)
        assert r.status_code == 413
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_serve_kwarg_option_allows_a_keyword(tmp_path: Path) -> None:
    with maru_serve("serve_targets:punctuate", tmp_path, "--kwarg", "mark", "--kwarg", "style") as (proc, url):
        r = httpx.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"mark": "?"}}, timeout=30)
        assert r.json() == {"output": "hi?"}
        r = httpx.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"temperature": 0}}, timeout=30)
        assert r.status_code == 422
        assert "it accepts ['mark', 'style']" in r.json()["error"]["message"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_serve_refuses_kwargs_without_the_option(tmp_path: Path) -> None:
    with maru_serve("serve_targets:punctuate", tmp_path) as (proc, url):
        r = httpx.post(f"{url}/invoke", json={"input": "hi", "kwargs": {"mark": "?"}}, timeout=30)
        assert r.status_code == 422
        assert "--kwarg NAME" in r.json()["error"]["message"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_serve_reserved_kwarg_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    result = CliRunner().invoke(cli.app, ["serve", "serve_targets:punctuate", "--kwarg", "config"])
    assert result.exit_code == 2
    assert "--kwarg" in result.output and "cannot be allowed" in result.output


def test_serve_bad_target_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    result = CliRunner().invoke(cli.app, ["serve", "serve_targets:nothing_here", "--port", "0"])
    assert result.exit_code == 2
    assert "has no attribute 'nothing_here'" in result.output
    result = CliRunner().invoke(cli.app, ["serve", "no_such_module_here:x"])
    assert result.exit_code == 2
    assert "cannot import module 'no_such_module_here'" in result.output


def test_help_lists_serve() -> None:
    result = CliRunner().invoke(cli.app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--max-body-bytes", "--graceful-timeout", "--kwarg"):
        assert option in result.output


def test_serve_logs_and_events_carry_no_secret(tmp_path: Path) -> None:
    from .serve_targets import FAKE_PROVIDER_KEY

    secret = FAKE_PROVIDER_KEY[8:]
    with maru_serve("serve_targets:configured_provider", tmp_path, "--log-level", "info") as (proc, url):
        r = httpx.post(f"{url}/invoke?api_key={FAKE_PROVIDER_KEY}", json={"input": "hi"}, timeout=30)
        assert r.status_code == 500
        r = httpx.post(f"{url}/stream_events", json={"input": "hi"}, timeout=30)
        assert "tenant-7" not in r.text and "db.internal" not in r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" in log and "_ProviderRefused" in log and "POST /invoke?api_key=" in log
    assert secret not in log and secret not in r.text


def test_serve_expose_server_metadata_option(tmp_path: Path) -> None:
    with maru_serve("serve_targets:configured_provider", tmp_path, "--expose-server-metadata") as (proc, url):
        r = httpx.post(f"{url}/stream_events", json={"input": "hi"}, timeout=30)
        assert "tenant-7" in r.text and "db.internal" in r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
