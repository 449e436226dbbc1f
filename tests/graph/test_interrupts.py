"""Human in the loop: interrupt() pauses a node and the thread; Command(resume=...) answers it, in
this process or another one on the same SQLite file."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from maru.graph import (
    END,
    START,
    CheckpointSaver,
    Command,
    GraphError,
    GraphInterrupt,
    InMemorySaver,
    Interrupt,
    SQLiteSaver,
    StateGraph,
    idempotency_key,
    interrupt,
)


class Review(TypedDict, total=False):
    draft: str
    verdict: str
    log: Annotated[list, operator.add]


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def review_graph(saver: CheckpointSaver | None, runs: dict[str, int], questions: int = 1) -> Any:
    """write -> review (asks ``questions`` times) -> END."""
    def write(state: Review) -> dict[str, Any]:
        runs["write"] = runs.get("write", 0) + 1
        return {"draft": "delete /tmp/x", "log": ["write"]}

    def review(state: Review) -> dict[str, Any]:
        runs["review"] = runs.get("review", 0) + 1
        answers = [interrupt({"question": f"approve {state['draft']}? ({n})"}) for n in range(questions)]
        return {"verdict": "/".join(answers), "log": ["review"]}

    graph = StateGraph(Review)
    graph.add_node("write", write).add_node("review", review)
    graph.add_edge(START, "write").add_edge("write", "review").add_edge("review", END)
    return graph.compile(checkpointer=saver)


def test_a_node_pauses_the_thread_and_resumes_with_the_answer() -> None:
    runs: dict[str, int] = {}
    app = review_graph(InMemorySaver(), runs)
    out = app.invoke({"log": []}, thread("t"))
    assert out["__interrupt__"] == [Interrupt({"question": "approve delete /tmp/x? (0)"}, "review")]
    assert "verdict" not in out and out["draft"] == "delete /tmp/x"
    assert app.invoke(None, thread("t"))["__interrupt__"]  # still waiting
    paused = app.get_state(thread("t"))
    assert paused is not None and paused.next == ("review",) and paused.interrupts[0].node == "review"
    done = app.invoke(Command(resume="yes"), thread("t"))
    assert done == {"draft": "delete /tmp/x", "verdict": "yes", "log": ["write", "review"]}
    assert runs == {"write": 1, "review": 2}  # the paused node runs again from its start; write does not


def test_several_questions_are_answered_one_resume_at_a_time_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "threads.sqlite"
    runs: dict[str, int] = {}
    first = review_graph(SQLiteSaver(path), runs, questions=2).invoke({}, thread("t"))
    assert first["__interrupt__"][0].value["question"].endswith("(0)")
    second = review_graph(SQLiteSaver(path), runs, questions=2).invoke(Command(resume="a"), thread("t"))
    assert second["__interrupt__"][0].value["question"].endswith("(1)")
    done = review_graph(SQLiteSaver(path), runs, questions=2).invoke(Command(resume="b"), thread("t"))
    assert done["verdict"] == "a/b" and runs == {"write": 1, "review": 3}
    again = review_graph(SQLiteSaver(path), runs, questions=2).invoke({}, thread("t"))  # a new turn asks anew
    assert again["__interrupt__"][0].value["question"].endswith("(0)")


def test_paused_parallel_nodes_are_answered_by_name_and_finished_siblings_do_not_rerun() -> None:
    runs: dict[str, int] = {}

    def node(name: str, asks: bool) -> Any:
        def run(state: Review) -> dict[str, Any]:
            runs[name] = runs.get(name, 0) + 1
            return {"log": [f"{name}:{interrupt(name) if asks else 'done'}"]}
        return run

    graph = StateGraph(Review)
    for name, asks in (("a", True), ("b", False), ("c", True)):
        graph.add_node(name, node(name, asks))
        graph.add_edge(START, name)
    app = graph.compile(checkpointer=InMemorySaver())
    out = app.invoke({}, thread("t"))
    assert [(i.node, i.value) for i in out["__interrupt__"]] == [("a", "a"), ("c", "c")]
    with pytest.raises(GraphError, match=r"nodes \['a', 'c'\] are paused.*\{node: answer"):
        app.invoke(Command(resume="x"), thread("t"))
    done = app.invoke(Command(resume={"a": 1, "c": 3}), thread("t"))
    assert done["log"] == ["a:1", "b:done", "c:3"]  # declaration order, as if nothing paused
    assert runs == {"a": 2, "b": 1, "c": 2}


def test_stream_shows_the_interrupt_and_async_resumes_too() -> None:
    runs: dict[str, int] = {}
    app = review_graph(InMemorySaver(), runs)
    chunks = list(app.stream({}, thread("s"), stream_mode="updates"))
    assert chunks[0] == {"write": {"draft": "delete /tmp/x", "log": ["write"]}}
    assert list(chunks[1]) == ["__interrupt__"]

    async def resume() -> Any:
        return await app.ainvoke(Command(resume="ok"), thread("s"))

    assert asyncio.run(resume())["verdict"] == "ok"


def test_without_a_checkpointer_an_interrupt_says_to_add_one_and_resuming_a_running_thread_is_refused() -> None:
    with pytest.raises(GraphInterrupt, match=r"without a checkpointer; compile\(checkpointer=InMemorySaver\(\)\)"):
        review_graph(None, {}).invoke({})
    assert not issubclass(GraphInterrupt, ValueError)  # a node's `except ValueError` must not swallow a pause
    app = review_graph(InMemorySaver(), {})
    with pytest.raises(GraphError, match="not paused"):
        app.invoke(Command(resume="yes"), thread("never"))


def test_an_interrupt_in_a_subgraph_pauses_the_parent_thread() -> None:
    runs: dict[str, int] = {}
    inner = review_graph(None, runs)
    graph = StateGraph(Review)
    graph.add_node("inner", inner)
    graph.add_edge(START, "inner")
    app = graph.compile(checkpointer=InMemorySaver())
    assert app.invoke({}, thread("p"))["__interrupt__"][0].node == "inner"
    assert app.invoke(Command(resume="fine"), thread("p"))["verdict"] == "fine"


def test_idempotency_keys_stay_the_same_when_a_node_runs_again_for_its_step() -> None:
    keys: list[str] = []

    def pay(state: Review) -> dict[str, Any]:
        keys.append(idempotency_key("charge"))
        interrupt("confirm the payment?")
        return {"verdict": "paid"}

    graph = StateGraph(Review)
    graph.add_node("pay", pay)
    graph.add_edge(START, "pay")
    app = graph.compile(checkpointer=InMemorySaver())
    app.invoke({}, thread("order-7"))
    app.invoke(Command(resume="yes"), thread("order-7"))
    app.invoke({}, thread("order-7"))  # a new turn: a new step, a new key
    assert keys[0] == keys[1] == "order-7:1:pay:charge" and keys[2] == "order-7:5:pay:charge"
    with pytest.raises(GraphError, match="idempotency_key.*inside such a node"):
        idempotency_key()
