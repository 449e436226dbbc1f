"""Checkpointers: a thread saved after every superstep, as updates (not the whole state), resumed
by the next call on the same thread — also by another compiled graph on the same SQLite file."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from maru.core import runnable
from maru.graph import (
    END,
    START,
    CheckpointSaver,
    GraphCheckpointError,
    GraphError,
    GraphRecursionError,
    InMemorySaver,
    PostgresSaver,
    SQLiteSaver,
    StateGraph,
    add_messages,
)
from maru.messages import AIMessage


class Chat(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    turns: int


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def chat_graph(saver: CheckpointSaver, calls: list[str] | None = None) -> Any:
    """user input -> bot (appends a reply, counts turns) -> END."""
    def bot(state: Chat) -> dict[str, Any]:
        if calls is not None:
            calls.append("bot")
        return {"messages": [AIMessage(f"reply {state.get('turns', 0) + 1}")], "turns": state.get("turns", 0) + 1}

    graph = StateGraph(Chat)
    graph.add_node("bot", bot)
    graph.add_edge(START, "bot").add_edge("bot", END)
    return graph.compile(checkpointer=saver)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> CheckpointSaver:
    if request.param == "memory":
        return InMemorySaver()
    if request.param == "sqlite":
        return SQLiteSaver(tmp_path / "graph.sqlite")
    postgres = PostgresSaver(request.getfixturevalue("postgres_url"))
    for (thread_id,) in postgres._rows("SELECT DISTINCT thread_id FROM maru_graph_checkpoints", ()):
        postgres.delete_thread(thread_id)  # each test starts from an empty database
    return postgres


def test_a_thread_continues_where_the_last_call_left_it(saver: CheckpointSaver) -> None:
    app = chat_graph(saver)
    app.invoke({"messages": "hi"}, thread("t1"))
    out = app.invoke({"messages": "again"}, thread("t1"))
    assert [m.text for m in out["messages"]] == ["hi", "reply 1", "again", "reply 2"]
    assert out["turns"] == 2
    other = app.invoke({"messages": "fresh"}, thread("t2"))  # threads are separate
    assert [m.text for m in other["messages"]] == ["fresh", "reply 1"]


def test_state_and_history_one_snapshot_per_superstep(saver: CheckpointSaver) -> None:
    app = chat_graph(saver)
    app.invoke({"messages": "hi"}, thread("t"))
    app.invoke({"messages": "again"}, thread("t"))
    latest = app.get_state(thread("t"))
    assert latest is not None and latest.next == () and latest.values["turns"] == 2
    history = app.get_state_history(thread("t"))
    assert [(s.step, s.metadata["source"], s.next) for s in history] == [
        (3, "loop", ()), (2, "input", ("bot",)), (1, "loop", ()), (0, "input", ("bot",)),
    ]
    assert [m.text for m in history[2].values["messages"]] == ["hi", "reply 1"]
    assert app.get_state(thread("nobody")) is None


def test_sqlite_threads_resume_in_another_compiled_graph_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "threads" / "graph.sqlite"  # the folder is created
    chat_graph(SQLiteSaver(path)).invoke({"messages": "hi"}, thread("shared"))
    out = chat_graph(SQLiteSaver(path)).invoke({"messages": "again"}, thread("shared"))
    assert [m.text for m in out["messages"]] == ["hi", "reply 1", "again", "reply 2"]
    assert all(isinstance(m.id, str) for m in out["messages"])


@pytest.mark.integration
def test_postgres_threads_resume_through_another_connection_and_a_dead_server_is_named(postgres_url: str) -> None:
    chat_graph(PostgresSaver(postgres_url)).invoke({"messages": "hi"}, thread("pg-shared"))
    out = chat_graph(PostgresSaver(postgres_url)).invoke({"messages": "again"}, thread("pg-shared"))
    assert [m.text for m in out["messages"]] == ["hi", "reply 1", "again", "reply 2"]
    PostgresSaver(postgres_url).delete_thread("pg-shared")
    with pytest.raises(GraphCheckpointError, match="cannot use the graph checkpoint database 127.0.0.1:1/maru"):
        PostgresSaver("postgresql+psycopg://postgres@127.0.0.1:1/maru")


def counting_loop(saver: CheckpointSaver, ran: list[int], fail_at: int | None = None) -> Any:
    class S(TypedDict):
        x: int

    def inc(state: S) -> dict[str, Any]:
        if state["x"] == fail_at:
            raise RuntimeError("crash")
        ran.append(state["x"])
        return {"x": state["x"] + 1}

    graph = StateGraph(S)
    graph.add_node("inc", inc)
    graph.add_edge(START, "inc")
    graph.add_conditional_edges("inc", lambda s: END if s["x"] >= 6 else "inc")
    return graph.compile(checkpointer=saver)


def test_a_failed_or_stopped_run_resumes_with_none_and_never_reruns_a_finished_step(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite"
    ran: list[int] = []
    with pytest.raises(RuntimeError, match="crash"):
        counting_loop(SQLiteSaver(path), ran, fail_at=3).invoke({"x": 0}, thread("t"))
    assert ran == [0, 1, 2]
    out = counting_loop(SQLiteSaver(path), ran).invoke(None, thread("t"))  # a new process, say
    assert out == {"x": 6} and ran == [0, 1, 2, 3, 4, 5]

    ran.clear()
    app = counting_loop(SQLiteSaver(path), ran)
    with pytest.raises(GraphRecursionError):
        app.invoke({"x": 0}, {**thread("u"), "recursion_limit": 2})
    assert app.invoke(None, thread("u")) == {"x": 6} and ran == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("io_bound", [False, True])
def test_in_a_failed_parallel_step_the_nodes_that_finished_do_not_run_again(tmp_path: Path, io_bound: bool) -> None:
    class S(TypedDict, total=False):
        log: Annotated[list, operator.add]

    runs = {"a": 0, "b": 0, "c": 0}
    broken = {"b"}

    def node(name: str) -> Any:
        def run(state: S) -> dict[str, Any]:
            runs[name] += 1
            if name in broken:
                raise RuntimeError(f"{name} failed")
            return {"log": [name]}
        return runnable(run, io_bound=io_bound)

    graph = StateGraph(S)
    for name in ("c", "b", "a"):  # declared c, b, a: the merge order
        graph.add_node(name, node(name))
        graph.add_edge(START, name)
    graph.add_node("after", lambda s: {"log": ["after"]})
    graph.add_edge(["c", "b", "a"], "after")
    app = graph.compile(checkpointer=SQLiteSaver(tmp_path / "g.sqlite"))
    with pytest.raises(RuntimeError, match="b failed"):
        app.invoke({"log": []}, thread("t"))
    broken.clear()
    out = app.invoke(None, thread("t"))
    assert out["log"] == ["c", "b", "a", "after"]  # the order of a run that never failed
    assert runs == {"c": 1, "b": 2, "a": 1}
    assert [s.metadata["source"] for s in app.get_state_history(thread("t"))] == ["loop", "loop", "input"]


def test_invoke_none_without_a_saved_thread_and_a_missing_thread_id_say_what_to_pass() -> None:
    app = chat_graph(InMemorySaver())
    with pytest.raises(GraphError, match="thread_id"):
        app.invoke({"messages": "hi"})
    with pytest.raises(GraphError, match=r"invoke\(None\) continues a saved thread"):
        app.invoke(None, thread("empty"))


def test_checkpoints_hold_each_steps_updates_so_rows_do_not_grow_with_the_state(tmp_path: Path) -> None:
    saver = SQLiteSaver(tmp_path / "graph.sqlite", snapshot_every=0)
    app = chat_graph(saver)
    for turn in range(30):
        app.invoke({"messages": f"message {turn:04d} " + "x" * 200}, thread("long"))
    conn = sqlite3.connect(tmp_path / "graph.sqlite")
    sizes = [n for (n,) in conn.execute("SELECT length(body) FROM maru_graph_checkpoints ORDER BY step")]
    assert len(sizes) == 60
    inputs, replies = sizes[0::2], sizes[1::2]
    assert max(inputs) - min(inputs) <= 4 and max(replies) - min(replies) <= 4  # "reply 9" vs "reply 10"
    assert saver.stored_bytes("long") == sum(sizes)
    state = app.get_state(thread("long"))
    assert state is not None and len(state.values["messages"]) == 60


def test_a_long_thread_starts_from_its_snapshot_and_reads_only_the_steps_after_it(tmp_path: Path) -> None:
    class Watched(SQLiteSaver):
        asked: list[int] = []

        def load(self, thread_id: str) -> Any:
            snapshot, checkpoints = super().load(thread_id)
            self.asked.append(snapshot.step if snapshot else -1)
            assert all(cp.step > self.asked[-1] for cp in checkpoints)
            return snapshot, checkpoints

    saver = Watched(tmp_path / "graph.sqlite", snapshot_every=4)
    plain = InMemorySaver(snapshot_every=0)
    for turn in range(5):  # 10 steps: snapshots after steps 3 and 7, the second replacing the first
        last = chat_graph(saver).invoke({"messages": f"turn {turn}"}, thread("t"))
        expected = chat_graph(plain).invoke({"messages": f"turn {turn}"}, thread("t"))
    assert saver.asked[-1] == 7
    rows = sqlite3.connect(tmp_path / "graph.sqlite").execute("SELECT thread_id, step FROM maru_graph_snapshots").fetchall()
    assert rows == [("t", 7)]
    assert [m.text for m in last["messages"]] == [m.text for m in expected["messages"]]
    assert last["turns"] == expected["turns"] == 5
    assert len(chat_graph(saver).get_state_history(thread("t"))) == 10  # every step is still there
    latest = chat_graph(saver).get_state(thread("t"))
    assert latest is not None and latest.step == 9 and latest.metadata["source"] == "loop"
    assert latest.values["messages"] == last["messages"] and latest.values["turns"] == 5
    saver.snapshot_every = 2  # now the latest step is the snapshot's own
    chat_graph(saver).invoke({"messages": "turn 5"}, thread("t"))
    assert saver.snapshot("t").step == 11 and chat_graph(saver).get_state(thread("t")).step == 11  # type: ignore[union-attr]
    assert chat_graph(saver).get_state(thread("t")).writes[0][0] == "bot"  # type: ignore[union-attr]
    saver.delete_thread("t")
    assert chat_graph(saver).get_state(thread("t")) is None and saver.snapshot("t") is None


def test_update_state_edits_a_thread_and_as_node_decides_what_runs_next(saver: CheckpointSaver) -> None:
    calls: list[str] = []
    app = chat_graph(saver, calls)
    app.invoke({"messages": "hi"}, thread("t"))
    reply = app.get_state(thread("t")).values["messages"][-1]  # type: ignore[union-attr]
    app.update_state(thread("t"), {"messages": AIMessage("corrected", id=reply.id), "turns": 10})
    state = app.get_state(thread("t"))
    assert state is not None and state.next == () and state.metadata["source"] == "update"
    assert [m.text for m in state.values["messages"]] == ["hi", "corrected"] and state.values["turns"] == 10

    app.update_state(thread("t"), {"messages": "one more"}, as_node="bot")  # as if bot wrote it: END next
    assert app.get_state(thread("t")).next == ()  # type: ignore[union-attr]
    with pytest.raises(GraphError, match="as_node='nobody'"):
        app.update_state(thread("t"), {}, as_node="nobody")
    assert calls == ["bot"]

    ran: list[int] = []
    loop = counting_loop(saver, ran)
    loop.invoke({"x": 4}, thread("loop"))
    loop.update_state(thread("loop"), {"x": 0}, as_node="inc")  # inc's edge: x < 6, so inc is due
    assert loop.get_state(thread("loop")).next == ("inc",)  # type: ignore[union-attr]
    assert loop.invoke(None, thread("loop")) == {"x": 6} and ran == [4, 5, 0, 1, 2, 3, 4, 5]


def test_fork_copies_a_thread_at_a_past_step_and_both_go_on_separately(saver: CheckpointSaver) -> None:
    app = chat_graph(saver)
    app.invoke({"messages": "first"}, thread("main"))
    app.invoke({"messages": "second"}, thread("main"))
    past = app.get_state_history(thread("main"))[2]  # after the first reply
    branch = app.fork(thread("main"), past.step, "branch")
    assert branch["configurable"]["thread_id"] == "branch"
    out = app.invoke({"messages": "other second"}, branch)
    assert [m.text for m in out["messages"]] == ["first", "reply 1", "other second", "reply 2"]
    main = app.get_state(thread("main"))
    assert main is not None and [m.text for m in main.values["messages"]][2] == "second"
    with pytest.raises(GraphError, match="already has checkpoints"):
        app.fork(thread("main"), 0, "branch")
    with pytest.raises(GraphError, match="no checkpoint at step 99"):
        app.fork(thread("main"), 99, "elsewhere")


def test_prune_drops_the_steps_a_snapshot_covers_and_the_thread_reads_the_same(saver: CheckpointSaver) -> None:
    saver.snapshot_every = 4
    app = chat_graph(saver)
    for turn in range(5):  # steps 0-9, snapshot at 7
        app.invoke({"messages": f"turn {turn}"}, thread("p"))
    before = app.get_state(thread("p"))
    assert saver.prune("p") == 8
    after = app.get_state(thread("p"))
    assert after is not None and before is not None
    assert (after.values, after.step, after.next) == (before.values, before.step, before.next)
    assert [h.step for h in app.get_state_history(thread("p"))] == [9, 8, 7]  # history starts at the snapshot
    with pytest.raises(GraphError, match="pruned up to step 7; fork from that step or a later one"):
        app.fork(thread("p"), 5, "p-old")
    forked = app.fork(thread("p"), 7, "p-fork")
    out = app.invoke({"messages": "turn 5 elsewhere"}, forked)
    assert [m.text for m in out["messages"]][-3:] == ["reply 4", "turn 5 elsewhere", "reply 5"]
    assert app.invoke({"messages": "turn 5"}, thread("p"))["turns"] == 6  # the pruned thread goes on


def test_two_runs_saving_the_same_step_of_a_thread_are_told_to_take_turns(saver: CheckpointSaver) -> None:
    chat_graph(saver).invoke({"messages": "hi"}, thread("busy"))
    stale = saver.records("busy")[-1]  # as a run that started before the last step was saved
    with pytest.raises(GraphCheckpointError, match="step 1 of thread 'busy' was already saved by another run"):
        saver.put("busy", stale)


def test_values_a_checkpoint_cannot_hold_are_refused_by_name() -> None:
    class S(TypedDict):
        x: Any

    graph = StateGraph(S)
    graph.add_node("a", lambda s: {"x": object()})
    graph.add_edge(START, "a")
    with pytest.raises(GraphCheckpointError, match="cannot be stored in a checkpoint.*JSON values"):
        graph.compile(checkpointer=InMemorySaver()).invoke({"x": 1}, thread("t"))


def test_a_sqlite_file_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(GraphCheckpointError, match="SQLite database of something else"):
        SQLiteSaver(path)
    with pytest.raises(ValueError, match="InMemorySaver"):
        SQLiteSaver(":memory:")


def test_async_runs_save_and_resume_too(saver: CheckpointSaver) -> None:
    app = chat_graph(saver)

    async def two_turns() -> dict[str, Any]:
        await app.ainvoke({"messages": "hi"}, thread("a"))
        return await app.ainvoke({"messages": "again"}, thread("a"))

    assert asyncio.run(two_turns())["turns"] == 2


def test_async_runs_call_a_network_saver_off_the_event_loop() -> None:
    class Remote(InMemorySaver):
        io_bound = True
        threads: set[int] = set()

        def put(self, thread_id: str, checkpoint: Any) -> None:
            self.threads.add(threading.get_ident())
            super().put(thread_id, checkpoint)

    saver = Remote()

    async def turn() -> tuple[dict[str, Any], int]:
        return await chat_graph(saver).ainvoke({"messages": "hi"}, thread("r")), threading.get_ident()

    out, loop_thread = asyncio.run(turn())
    assert out["turns"] == 1 and saver.threads and loop_thread not in saver.threads
