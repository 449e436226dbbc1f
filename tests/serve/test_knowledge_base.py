"""A ``KnowledgeBase`` served over HTTP like any runnable (what ``maru serve module:kb`` does)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from maru.serve import create_app

from .conftest import live_server, read_sse
from .serve_targets import KB_REPLY, knowledge_base

QUESTION = "When was Gyeongbokgung built?"


@pytest.fixture(scope="module")
def kb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kb = knowledge_base(tmp_path_factory.mktemp("kb"))
    with live_server(create_app(kb, allowed_kwargs=["k"])) as url:
        yield url
    kb.close()


def test_invoke_and_batch_answer(client: httpx.Client, kb_url: str) -> None:
    assert client.post(f"{kb_url}/invoke", json={"input": QUESTION}).json() == {"output": KB_REPLY}
    r = client.post(f"{kb_url}/invoke", json={"input": {"question": QUESTION}, "kwargs": {"k": 2}})
    assert r.json() == {"output": KB_REPLY}
    r = client.post(f"{kb_url}/batch", json={"inputs": [QUESTION, "Where is the fish market?"]})
    assert r.json() == {"outputs": [KB_REPLY, KB_REPLY]}


def test_the_answer_streams_token_by_token(client: httpx.Client, kb_url: str) -> None:
    with client.stream("POST", f"{kb_url}/stream", json={"input": QUESTION}) as r:
        events = read_sse(r)
    assert events[-1] == ("end", {})
    tokens = [data for event, data in events[:-1] if event == "data"]
    assert len(tokens) > 1 and "".join(tokens) == KB_REPLY


def test_stream_events_show_the_retrieval_and_the_model(client: httpx.Client, kb_url: str) -> None:
    with client.stream("POST", f"{kb_url}/stream_events", json={"input": QUESTION}) as r:
        events = [data for event, data in read_sse(r) if event == "data"]
    started = [(e["name"], e["parent_id"]) for e in events if e["event"].endswith("_start")]
    assert started[0] == ("KnowledgeBase", None)
    assert {"HybridRetriever", "ChatPromptTemplate", "ScriptedChatModel"} <= {name for name, _ in started}
    assert len({e["trace_id"] for e in events}) == 1


def test_an_empty_question_is_an_error_not_an_answer(client: httpx.Client, kb_url: str) -> None:
    r = client.post(f"{kb_url}/invoke", json={"input": "   "})
    assert r.status_code >= 400 and "empty" in r.json()["error"]["message"]
