"""``maru serve`` streaming a chain whose model is a real one: llama.cpp's OpenAI-compatible server
with the bundled SmolLM2 (the session fixture ``llama_server``), reached through the environment
as a user would configure it. Structure and protocol only, never wording."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import parse_sse
from .test_cli_serve import maru_serve

pytestmark = pytest.mark.real_model


def test_maru_serve_streams_a_chain_on_the_real_model(
    llama_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url)
    monkeypatch.setenv("MARU_MODEL", llama_server.model)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from .real_model_targets import chain

    expected = chain.invoke({"city": "Seoul"})  # greedy decoding: the served stream must add up to it
    with maru_serve("real_model_targets:chain", tmp_path) as (proc, url):
        body = {"input": {"city": "Seoul"}}
        with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/stream", json=body) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = list(parse_sse(r.iter_lines()))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"data"} and len(names) > 2
    assert "".join(data for _, data in events[:-1]) == expected
