"""The viewer's JSON API and page (through httpx, in process), and ``maru trace ui`` over a socket."""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from maru.tracing.run import Run
from maru.tracing.store import RunStore
from maru.tracing.viewer import STATIC_DIR, create_viewer_app

from .traces import freeze_now, make_trace

NOW = time.time()


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_now(monkeypatch, NOW)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "traces.sqlite")
    s.write(make_trace("tr-old", "qa-chain", start=NOW - 86400, tags=("prod",)))
    s.write(make_trace("tr-mid", "summarise", start=NOW - 600, child_error="ValueError: bad json"))
    s.write(make_trace("tr-new", "qa-chain v2", start=NOW - 60, error="TimeoutError: too slow"))
    return s


@pytest.fixture
def client(store: RunStore) -> TestClient:
    return TestClient(create_viewer_app(store))


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["trace_id"] for t in response.json()["traces"]]


def test_list_traces_summarises_each_trace(client: TestClient) -> None:
    data = client.get("/api/traces").json()
    assert data["total"] == 3 and data["limit"] == 50 and data["offset"] == 0
    new, mid, old = data["traces"]
    assert [new["trace_id"], mid["trace_id"], old["trace_id"]] == ["tr-new", "tr-mid", "tr-old"]
    assert (new["status"], new["error_count"], new["run_count"]) == ("error", 2, 3)
    assert (mid["status"], mid["error_count"], mid["run_count"]) == ("ok", 1, 5)
    assert (old["status"], old["error_count"]) == ("ok", 0)
    assert old["latency"] == pytest.approx(0.81)
    assert (old["input_tokens"], old["output_tokens"], old["cost"]) == (120, 30, pytest.approx(0.000036))
    assert old["tags"] == ["prod"]
    assert "inputs" not in old and "outputs" not in old  # the list stays light


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=qa", ["tr-new", "tr-old"]),
        ("name=SUMM", ["tr-mid"]),
        ("tag=prod", ["tr-old"]),
        ("errors=true", ["tr-new", "tr-mid"]),
        ("since=1h", ["tr-new", "tr-mid"]),
        ("since=1h&until=5m", ["tr-mid"]),
        (f"since={NOW - 120}", ["tr-new"]),
        ("limit=1&offset=1", ["tr-mid"]),
        ("name=&tag=&since=&until=", ["tr-new", "tr-mid", "tr-old"]),  # empty inputs are no filter
    ],
)
def test_list_filters(client: TestClient, query: str, expected: list[str]) -> None:
    assert ids(client.get(f"/api/traces?{query}")) == expected


def test_total_counts_every_match_not_just_the_page(client: TestClient) -> None:
    data = client.get("/api/traces?limit=1&name=qa").json()
    assert data["total"] == 2 and len(data["traces"]) == 1


def test_bad_parameters_are_422_with_a_message(client: TestClient) -> None:
    response = client.get("/api/traces?since=whenever")
    assert response.status_code == 422
    assert "since" in response.json()["detail"] and "duration back from now" in response.json()["detail"]
    assert client.get("/api/traces?limit=0").status_code == 422
    assert client.get("/api/traces?offset=-1").status_code == 422


def test_get_trace_gives_every_run_with_content(client: TestClient) -> None:
    data = client.get("/api/traces/tr-mid").json()
    assert data["trace_id"] == "tr-mid"
    runs = {r["name"]: r for r in data["runs"]}
    assert list(runs) == ["summarise", "ChatPromptTemplate", "OpenAIChat", "format", "parse"]
    assert runs["parse"]["parent_id"] == runs["format"]["id"]
    assert runs["parse"]["error"] == "ValueError: bad json"
    assert runs["OpenAIChat"]["inputs"] == [{"type": "human", "content": "서울 날씨는?"}]
    assert runs["OpenAIChat"]["outputs"] == {"type": "ai", "content": "맑음, 21°C"}
    assert runs["OpenAIChat"]["latency"] == pytest.approx(0.8)


def test_get_trace_by_prefix_and_its_errors(client: TestClient) -> None:
    assert client.get("/api/traces/tr-n").json()["trace_id"] == "tr-new"
    response = client.get("/api/traces/tr-")
    assert response.status_code == 409 and "several" in response.json()["detail"]
    response = client.get("/api/traces/nothing")
    assert response.status_code == 404 and "no trace" in response.json()["detail"]


def test_values_json_cannot_carry_are_sent_as_text(store: RunStore, client: TestClient) -> None:
    store.write([Run("n", "nan", None, "metrics", "chain", NOW, NOW + 1, outputs={"loss": math.nan, "x": math.inf})])
    response = client.get("/api/traces/nan")
    assert response.status_code == 200
    assert response.json()["runs"][0]["outputs"] == {"loss": "nan", "x": "inf"}


def test_a_store_broken_while_serving_is_a_500_with_the_reason(store: RunStore, client: TestClient) -> None:
    store.close()
    store.path.write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    response = client.get("/api/traces")
    assert response.status_code == 500
    assert "corrupt" in response.json()["detail"]


def test_the_page_and_its_assets_are_served_with_nothing_external(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert f"/static/{asset}" in page.text
    assert client.get("/api/info").json()["store"].endswith("traces.sqlite")
    # No CDN, no external URL in any shipped asset (the page works offline).
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), path.name
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_maru_trace_ui_serves_the_store_on_loopback(store: RunStore) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "maru.cli", "trace", "ui", "--db", str(store.path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/traces?name=summ", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ''
                    raise AssertionError(f"maru trace ui did not start: {out}") from None
                time.sleep(0.1)
        assert [t["trace_id"] for t in response.json()["traces"]] == ["tr-mid"]
        assert "<title>maru traces</title>" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert f"http://127.0.0.1:{port}/" in out


def test_stack_traces_come_with_a_trace_not_with_the_list(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "traces.sqlite")
    [root] = make_trace("tr-x", start=NOW - 5, error="TimeoutError: slow")[-1:]
    root.stacktrace = "Traceback (most recent call last):\n  ...\nTimeoutError: slow\n"
    store.write([root])
    client = TestClient(create_viewer_app(store))
    [listed] = client.get("/api/traces").json()["traces"]
    assert "stacktrace" not in listed and "inputs" not in listed
    [shown] = client.get("/api/traces/tr-x").json()["runs"]
    assert shown["stacktrace"].endswith("TimeoutError: slow\n")
