"""Threads of a served graph over real HTTP (uvicorn on loopback): create, run until the graph
asks for approval, read the state and history, answer (approve / edit / reject), stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maru import runnable
from maru.graph import SQLiteSaver
from maru.serve import create_app

from .conftest import live_server, parse_sse
from .threads_targets import AgentLike, approval, approval_graph

FAKE_KEY = "sk-proj-" + "Qw3" * 12


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with live_server(create_app(approval_graph(SQLiteSaver(tmp_path / "threads.sqlite")))) as base:
        yield base


def new_thread(client: httpx.Client, url: str) -> str:
    r = client.post(f"{url}/threads")
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


def run_until_asked(client: httpx.Client, url: str, path: str = "/tmp/x") -> tuple[str, dict[str, Any]]:
    thread = new_thread(client, url)
    r = client.post(f"{url}/threads/{thread}/runs", json={"input": {"request": path}})
    assert r.status_code == 200, r.text
    return thread, r.json()


def test_a_run_pauses_on_the_approval_and_the_state_shows_it(client: httpx.Client, url: str) -> None:
    thread, paused = run_until_asked(client, url)
    asked = {"type": "tool_approval", "tool_calls": [{"id": "call-1", "name": "delete_file", "args": {"path": "/tmp/x"}}]}
    assert paused["status"] == "interrupted"
    assert paused["interrupts"] == [{"node": "review", "value": asked}]
    assert paused["next"] == ["review"]
    state = client.get(f"{url}/threads/{thread}/state").json()
    assert state == paused
    assert state["values"]["tool_calls"] == asked["tool_calls"] and state["checkpoint_id"] == str(state["step"])
    paths = client.get(f"{url}/openapi.json").json()["paths"]
    assert {"/threads", "/threads/{thread_id}/runs", "/threads/{thread_id}/resume", "/threads/{thread_id}/stream",
            "/threads/{thread_id}/state", "/threads/{thread_id}/history"} <= set(paths)


@pytest.mark.parametrize(
    ("decision", "result"),
    [
        ({"action": "approve"}, "deleted /tmp/x"),
        ({"action": "edit", "args": {"path": "/tmp/y"}}, "deleted /tmp/y"),
        ({"action": "reject", "message": "not that file"}, "rejected: not that file"),
    ],
    ids=["approve", "edit", "reject"],
)
def test_resume_answers_the_paused_node(client: httpx.Client, url: str, decision: dict[str, Any], result: str) -> None:
    thread, _ = run_until_asked(client, url)
    r = client.post(f"{url}/threads/{thread}/resume", json={"resume": decision})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["interrupts"] == [] and done["next"] == []
    assert done["values"]["results"] == [result]
    assert done["values"]["messages"][-1]["content"] == "All done here."
    history = client.get(f"{url}/threads/{thread}/history").json()["checkpoints"]
    steps = [c["step"] for c in history]
    assert steps == sorted(steps, reverse=True) and history[0]["values"] == done["values"]
    assert [c["metadata"]["source"] for c in history][-1] == "input"
    assert len(client.get(f"{url}/threads/{thread}/history", params={"limit": 2}).json()["checkpoints"]) == 2


def test_stream_shows_each_mode_then_the_thread(client: httpx.Client, url: str) -> None:
    thread = new_thread(client, url)
    body = {"input": {"request": "/tmp/x"}, "stream_mode": ["values", "updates", "messages"]}
    with client.stream("POST", f"{url}/threads/{thread}/stream", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = list(parse_sse(r.iter_lines()))
    kinds = [event for event, _ in events]
    assert kinds[-1] == "end" and set(kinds[:-1]) == {"data"}
    updates = [d["chunk"] for e, d in events if e == "data" and d["mode"] == "updates"]
    assert {"plan": {"tool_calls": [{"id": "call-1", "name": "delete_file", "args": {"path": "/tmp/x"}}]}} in updates
    assert updates[-1]["__interrupt__"][0]["value"]["type"] == "tool_approval"
    assert events[-1][1]["status"] == "interrupted"

    body = {"resume": {"action": "approve"}, "stream_mode": "messages"}
    with client.stream("POST", f"{url}/threads/{thread}/stream", json=body) as r:
        events = list(parse_sse(r.iter_lines()))
    messages = [d for e, d in events if e == "data"]
    assert messages and all(m["mode"] == "messages" and m["node"] == "report" for m in messages)
    assert "".join(m["chunk"]["content"] for m in messages) == "All done here."
    assert events[-1] == ("end", events[-1][1]) and events[-1][1]["status"] == "done"


def test_unknown_threads_are_404(client: httpx.Client, url: str) -> None:
    for method, path, body in [
        ("GET", "state", None), ("GET", "history", None), ("POST", "runs", {"input": {"request": "x"}}),
        ("POST", "resume", {"resume": {"action": "approve"}}), ("POST", "stream", {"input": {"request": "x"}}),
    ]:
        r = client.request(method, f"{url}/threads/nope/{path}", json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == {"type": "thread_not_found", "message": "no thread 'nope' here; create one with POST /threads"}


def test_bad_requests_get_one_clear_message(client: httpx.Client, url: str) -> None:
    thread = new_thread(client, url)
    runs = f"{url}/threads/{thread}/runs"
    cases = [
        (runs, {"input": [1, 2]}, 422, "input must be a JSON object of the graph's state keys"),
        (runs, {"input": {"request": "x", "colour": 1}}, 422, "input has keys ['colour'] that the graph's state does not declare"),
        (runs, {"input": None}, 422, "has not run yet: send input"),
        (f"{url}/threads/{thread}/resume", {"resume": "yes"}, 409, "is not waiting for an answer (status: new)"),
        (f"{url}/threads/{thread}/stream", {"input": {"request": "x"}, "resume": 1}, 422, "not both"),
        (f"{url}/threads/{thread}/stream", {"input": {"request": "x"}, "stream_mode": "tokens"}, 422, "choose from"),
        (f"{url}/threads", {"thread_id": thread}, 409, "already exists"),
        (f"{url}/threads", {"thread_id": "a b"}, 422, "thread_id"),
    ]
    for where, body, status, words in cases:
        r = client.post(where, json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.text)
    assert client.get(f"{url}/threads/{thread}/state").json()["status"] == "new"


def test_a_busy_thread_refuses_a_second_request(client: httpx.Client, tmp_path: Path) -> None:
    app = create_app(approval_graph(SQLiteSaver(tmp_path / "busy.sqlite")))
    with live_server(app) as url:
        thread = new_thread(client, url)
        claim = app.state.threads.claim(thread)
        r = client.post(f"{url}/threads/{thread}/runs", json={"input": {"request": "x"}})
        assert r.status_code == 409 and "running another request" in r.json()["error"]["message"]
        app.state.threads.release(thread, claim)
        assert client.post(f"{url}/threads/{thread}/runs", json={"input": {"request": "x"}}).status_code == 200


def test_a_client_given_thread_id_and_an_interrupt_payload_are_masked(client: httpx.Client, url: str) -> None:
    assert client.post(f"{url}/threads", json={"thread_id": "ticket-42"}).json() == {"thread_id": "ticket-42"}
    r = client.post(f"{url}/threads/ticket-42/runs", json={"input": {"request": f"/tmp/{FAKE_KEY}"}})
    assert r.status_code == 200
    for text in (r.text, client.get(f"{url}/threads/ticket-42/state").text, client.get(f"{url}/threads/ticket-42/history").text):
        assert FAKE_KEY[8:] not in text and "sk-***" in text


def test_a_graph_without_a_checkpointer_keeps_threads_in_maru_home(
    client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARU_HOME", str(tmp_path / "home"))
    with live_server(create_app(AgentLike(approval))) as url:
        thread, paused = run_until_asked(client, url)
        assert paused["status"] == "interrupted"
    assert (tmp_path / "home" / "threads.sqlite").exists()
    assert approval.checkpointer is None  # the served copy has it, not the caller's graph


def test_a_runnable_that_is_not_a_graph_has_no_threads(client: httpx.Client) -> None:
    with live_server(create_app(runnable(lambda s: s))) as url:
        assert client.post(f"{url}/threads").status_code == 404
        assert "/threads" not in client.get(f"{url}/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("decision", "deleted", "answer"),
    [({"action": "approve"}, ["a.txt"], "Deleted."), ({"action": "edit", "args": {"path": "b.txt"}}, ["b.txt"], "Deleted."),
     ({"action": "reject", "message": "keep it"}, [], "Kept.")],
    ids=["approve", "edit", "reject"],
)
def test_a_tool_calling_agent_waits_for_approval_over_http(
    client: httpx.Client, tmp_path: Path, decision: dict[str, Any], deleted: list[str], answer: str
) -> None:
    from maru.agents import ToolCallingAgent, tool
    from maru.messages import AIMessage, ToolCall
    from maru.models import ScriptedChatModel

    removed: list[str] = []

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        removed.append(path)
        return f"deleted {path}"

    model = ScriptedChatModel([AIMessage("", tool_calls=[ToolCall(name="delete_file", args={"path": "a.txt"}, id="c0")]), answer])
    agent = ToolCallingAgent(model, [delete_file], approve=["delete_file"], checkpointer=SQLiteSaver(tmp_path / "agent.sqlite"))
    with live_server(create_app(agent)) as url:
        thread = new_thread(client, url)
        paused = client.post(f"{url}/threads/{thread}/runs", json={"input": {"messages": [{"role": "user", "content": "delete a.txt"}]}}).json()
        assert paused["status"] == "interrupted", paused
        asked = paused["interrupts"][0]["value"]
        assert asked == {"type": "tool_approval", "tool_calls": [{"id": "c0", "name": "delete_file", "args": {"path": "a.txt"}}]}
        assert removed == []
        done = client.post(f"{url}/threads/{thread}/resume", json={"resume": decision}).json()
    assert done["status"] == "done", done
    assert removed == deleted and done["values"]["messages"][-1]["content"] == answer


def test_threads_on_postgresql_are_read_off_the_event_loop(client: httpx.Client, postgres_url: str) -> None:
    from maru.graph import PostgresSaver

    saver = PostgresSaver(postgres_url)
    saver.delete_thread("pg-approval")
    with live_server(create_app(approval_graph(saver))) as url:
        assert client.post(f"{url}/threads", json={"thread_id": "pg-approval"}).status_code == 201
        paused = client.post(f"{url}/threads/pg-approval/runs", json={"input": {"request": "/tmp/x"}}).json()
        assert paused["status"] == "interrupted"
        done = client.post(f"{url}/threads/pg-approval/resume", json={"resume": {"action": "approve"}}).json()
        assert done["status"] == "done" and done["values"]["results"] == ["deleted /tmp/x"]
        assert len(client.get(f"{url}/threads/pg-approval/history").json()["checkpoints"]) == 4
    saver.delete_thread("pg-approval")
