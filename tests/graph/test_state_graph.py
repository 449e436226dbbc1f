"""The state graph: reducers, edges, conditional edges, loops and their limit, parallel steps,
streaming, subgraphs, async, drawing."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel

from maru.core import listen, runnable
from maru.graph import (
    END,
    START,
    GraphError,
    GraphRecursionError,
    StateGraph,
    add_messages,
    merge_dicts,
)
from maru.messages import AIMessage, HumanMessage


class Counter(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


class Chat(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    info: Annotated[dict, merge_dicts]
    turns: int


def chain(*steps: Any, schema: type[Any] = Counter) -> StateGraph:
    graph = StateGraph(schema)
    names = [f"s{i}" for i in range(len(steps))]
    for name, step in zip(names, steps, strict=True):
        graph.add_node(name, step)
    for a, b in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(a, b)
    return graph


def test_a_chain_updates_replace_and_reducers_combine() -> None:
    app = chain(
        lambda s: {"x": s["x"] + 1, "log": ["a"]},
        lambda s: {"x": s["x"] * 10, "log": ["b"]},
        lambda s: None,  # a node may change nothing
    ).compile()
    assert app.invoke({"x": 1}) == {"x": 20, "log": ["a", "b"]}


def test_add_messages_appends_coerces_and_replaces_by_id() -> None:
    def reply(state: Chat) -> dict[str, Any]:
        return {"messages": [AIMessage("hi"), ("human", "again")], "info": {"b": 2}, "turns": 1}

    def fix(state: Chat) -> dict[str, Any]:
        first = state["messages"][0]
        return {"messages": HumanMessage("edited", id=first.id)}

    out = chain(reply, fix, schema=Chat).compile().invoke({"messages": "hello", "info": {"a": 1}})
    assert [m.text for m in out["messages"]] == ["edited", "hi", "again"]
    assert all(m.id for m in out["messages"]) and len({m.id for m in out["messages"]}) == 3
    assert out["info"] == {"a": 1, "b": 2} and out["turns"] == 1


def test_any_binary_function_is_a_reducer_and_starts_from_the_types_empty_value() -> None:
    class S(TypedDict, total=False):
        total: Annotated[int, operator.add]
        best: Annotated[int, max]

    app = chain(lambda s: {"total": 5, "best": 3}, lambda s: {"total": 2, "best": 1}, schema=S).compile()
    assert app.invoke({"best": 0}) == {"total": 7, "best": 3}


def test_pydantic_state_nodes_get_the_model() -> None:
    class S(BaseModel):
        name: str
        count: int = 0
        notes: Annotated[list[str], operator.add] = []

    seen = []

    def node(state: S) -> dict[str, Any]:
        seen.append(type(state))
        return {"count": state.count + 1, "notes": [state.name]}

    out = chain(node, node, schema=S).compile().invoke({"name": "maru"})
    assert seen == [S, S]
    assert out == {"name": "maru", "count": 2, "notes": ["maru", "maru"]}


def test_a_node_writing_an_undeclared_key_or_a_non_dict_is_told_what_to_return() -> None:
    with pytest.raises(GraphError, match=r"node 's0' wrote \['y'\].*its keys are \['log', 'x'\]"):
        chain(lambda s: {"y": 1}).compile().invoke({"x": 1})
    with pytest.raises(GraphError, match="node 's0' returned int.*returns a dict of the state keys"):
        chain(lambda s: 3).compile().invoke({"x": 1})


def test_building_mistakes_name_the_node_and_what_to_do() -> None:
    graph = StateGraph(Counter)
    graph.add_node("a", lambda s: None)
    with pytest.raises(GraphError, match="already a node 'a'"):
        graph.add_node("a", lambda s: None)
    with pytest.raises(GraphError, match="reserved"):
        graph.add_node(END, lambda s: None)
    with pytest.raises(GraphError, match="no entry point"):
        graph.compile()
    graph.add_edge(START, "a").add_edge("a", "b")
    with pytest.raises(GraphError, match=r"an edge goes to 'b', which is not a node of the graph; its nodes are \['a'\]"):
        graph.compile()


def test_conditional_edges_route_by_the_state_with_or_without_a_path_map() -> None:
    graph = StateGraph(Counter)
    graph.add_node("check", lambda s: None)
    graph.add_node("big", lambda s: {"log": ["big"]})
    graph.add_node("small", lambda s: {"log": ["small"]})
    graph.add_edge(START, "check")
    graph.add_conditional_edges("check", lambda s: s["x"] > 10, {True: "big", False: "small"})
    app = graph.compile()
    assert app.invoke({"x": 50})["log"] == ["big"]
    assert app.invoke({"x": 5})["log"] == ["small"]

    graph = StateGraph(Counter)
    graph.add_node("check", lambda s: None)
    graph.add_edge(START, "check")
    graph.add_conditional_edges("check", lambda s: "nowhere")
    with pytest.raises(GraphError, match="chose 'nowhere', which is not a node"):
        graph.compile().invoke({"x": 1})


def test_a_cycle_runs_until_its_condition_and_stops_at_the_limit_with_the_state() -> None:
    class S(Counter, total=False):
        stop: int

    graph = StateGraph(S)
    graph.add_node("inc", lambda s: {"x": s["x"] + 1})
    graph.add_edge(START, "inc")
    graph.add_conditional_edges("inc", lambda s: END if s["x"] >= s["stop"] else "inc")
    app = graph.compile()
    assert app.invoke({"x": 0, "stop": 7})["x"] == 7
    with pytest.raises(GraphRecursionError, match="ran 25 supersteps without reaching END.*recursion_limit") as err:
        app.invoke({"x": 0, "stop": 1000})
    assert err.value.state["x"] == 25 and err.value.next == ("inc",)
    with pytest.raises(GraphRecursionError) as err:
        app.invoke({"x": 0, "stop": 1000}, {"recursion_limit": 3})  # type: ignore[typeddict-unknown-key]
    assert err.value.state["x"] == 3 and err.value.limit == 3
    assert app.invoke({"x": 0, "stop": 40}, {"recursion_limit": 40})["x"] == 40  # type: ignore[typeddict-unknown-key]


def fan_out(order: list[str]) -> StateGraph:
    """START -> a, b, c in one superstep (declared c, a, b) -> join."""
    graph = StateGraph(Counter)
    for name in ("c", "a", "b"):
        graph.add_node(name, lambda s, name=name: (order.append(name), {"log": [name]})[1])
    graph.add_node("join", lambda s: {"x": len(s["log"])})
    for name in ("c", "a", "b"):
        graph.add_edge(START, name)
    graph.add_edge(["c", "a", "b"], "join")
    graph.add_edge("join", END)
    return graph


def test_parallel_branches_run_in_one_step_and_merge_in_declaration_order() -> None:
    order: list[str] = []
    app = fan_out(order).compile()
    steps = list(app.stream({"x": 0}, stream_mode="updates"))
    assert steps == [{"c": {"log": ["c"]}}, {"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}, {"join": {"x": 3}}]
    for _ in range(5):
        assert app.invoke({"x": 0}) == {"x": 3, "log": ["c", "a", "b"]}


def test_parallel_io_bound_branches_run_concurrently_and_still_merge_in_order() -> None:
    barrier = threading.Barrier(3, timeout=5)  # each node waits for the other two: only concurrency passes

    def node(name: str) -> Any:
        def run(state: Counter) -> dict[str, Any]:
            barrier.wait()
            return {"log": [name]}
        return runnable(run, io_bound=True)

    graph = StateGraph(Counter)
    for name in ("z", "y", "x"):
        graph.add_node(name, node(name))
        graph.add_edge(START, name)
    assert graph.compile().invoke({})["log"] == ["z", "y", "x"]


def test_two_parallel_nodes_replacing_one_key_is_an_error_that_names_both() -> None:
    graph = StateGraph(Counter)
    graph.add_node("a", lambda s: {"x": 1})
    graph.add_node("b", lambda s: {"x": 2})
    graph.add_edge(START, "a").add_edge(START, "b")
    with pytest.raises(GraphError, match="nodes 'a' and 'b' both set 'x' in the same step.*Annotated"):
        graph.compile().invoke({})


def test_a_join_waits_for_every_source_across_steps() -> None:
    graph = StateGraph(Counter)
    graph.add_node("fast", lambda s: {"log": ["fast"]})
    graph.add_node("slow1", lambda s: {"log": ["slow1"]})
    graph.add_node("slow2", lambda s: {"log": ["slow2"]})
    graph.add_node("join", lambda s: {"log": ["join"]})
    graph.add_edge(START, "fast").add_edge(START, "slow1").add_edge("slow1", "slow2")
    graph.add_edge(["fast", "slow2"], "join")
    assert graph.compile().invoke({})["log"] == ["fast", "slow1", "slow2", "join"]


def test_stream_values_starts_with_the_input_and_modes_combine() -> None:
    app = chain(lambda s: {"x": 2}, lambda s: {"x": 3}).compile()
    assert list(app.stream({"x": 1})) == [{"x": 1}, {"x": 2}, {"x": 3}]
    both = list(app.stream({"x": 1}, stream_mode=["updates", "values"]))
    assert both[0] == ("values", {"x": 1}) and ("updates", {"s1": {"x": 3}}) in both
    with pytest.raises(GraphError, match="unknown stream_mode 'debug'"):
        list(app.stream({"x": 1}, stream_mode="debug"))


def test_async_batch_and_async_nodes() -> None:
    async def slow(state: Counter) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"x": state["x"] + 1}

    app = chain(slow, lambda s: {"x": s["x"] * 2}).compile()
    assert asyncio.run(app.ainvoke({"x": 1})) == {"x": 4}
    assert app.invoke({"x": 1}) == {"x": 4}
    assert app.batch([{"x": 1}, {"x": 2}]) == [{"x": 4}, {"x": 6}]

    async def collect() -> list[Any]:
        return [chunk async for chunk in app.astream({"x": 1}, stream_mode="updates")]

    assert asyncio.run(collect()) == [{"s0": {"x": 2}}, {"s1": {"x": 4}}]


def test_a_compiled_graph_is_a_node_of_another() -> None:
    inner = chain(lambda s: {"messages": [AIMessage("inner")]}, schema=Chat).compile(name="inner")
    outer = chain(lambda s: {"messages": [AIMessage("before")]}, inner, schema=Chat).compile()
    out = outer.invoke({"messages": "hi"})
    assert [m.text for m in out["messages"]] == ["hi", "before", "inner"]  # by id, shared messages count once


def test_each_node_is_a_child_run_of_its_superstep_under_the_graph() -> None:
    app = chain(lambda s: {"x": 2}, lambda s: {"x": 3}).compile(name="my graph")
    events: list[Any] = []
    with listen(events.append):
        app.invoke({"x": 1})
    starts = [e for e in events if e["event"] == "on_chain_start"]
    assert [e.name for e in starts] == ["my graph", "step 1", "s0", "step 2", "s1"]
    graph_run, step1, s0, step2, s1 = starts
    assert not graph_run.parent_ids
    assert step1.parent_id == step2.parent_id == graph_run.run_id  # supersteps: children of the graph
    assert (s0.parent_id, s1.parent_id) == (step1.run_id, step2.run_id)  # nodes: children of their step
    assert s1.metadata == {"langgraph_step": 2}


def test_to_mermaid_draws_nodes_edges_joins_and_branches() -> None:
    graph = StateGraph(Counter)
    graph.add_node("check", lambda s: None).add_node("big one", lambda s: None)
    graph.add_edge(START, "check")
    graph.add_conditional_edges("check", lambda s: True, {True: "big one", False: END})
    text = graph.compile().to_mermaid()
    assert text.startswith("flowchart TD\n")
    assert 'n_big_20_one["big one"]' in text
    assert "n___start__ --> n_check" in text
    assert 'n_check -.->|"True"| n_big_20_one' in text and 'n_check -.->|"False"| n___end__' in text


def test_a_traced_graph_is_one_trace_with_its_nodes_and_routers_under_it() -> None:
    from maru.tracing import tracing

    class Sink:
        def __init__(self) -> None:
            self.runs: list[Any] = []

        def write(self, runs: list[Any]) -> None:
            self.runs.extend(runs)

        def flush(self) -> None: ...

        def close(self) -> None: ...

    graph = StateGraph(Counter)
    graph.add_node("left", runnable(lambda s: {"log": ["l"]}, io_bound=True))  # on the pool
    graph.add_node("right", runnable(lambda s: {"log": ["r"]}, io_bound=True))
    graph.add_node("pick", lambda s: None)
    graph.add_edge(START, "left").add_edge(START, "right").add_edge(["left", "right"], "pick")
    graph.add_conditional_edges("pick", lambda s: END)
    sink = Sink()
    with tracing([sink]):
        graph.compile(name="traced").invoke({"x": 1})
    root = next(r for r in sink.runs if r.parent_id is None)
    assert root.name == "traced" and root.outputs == {"x": 1, "log": ["l", "r"]}
    steps = {r.name: r.id for r in sink.runs if r.parent_id == root.id}
    assert sorted(steps) == ["step 1", "step 2"]
    under = {name: sorted(r.name for r in sink.runs if r.parent_id == run_id) for name, run_id in steps.items()}
    assert under == {"step 1": ["left", "right"], "step 2": ["lambda", "pick"]}  # the router is a run too
    assert {r.trace_id for r in sink.runs} == {root.trace_id}


def test_nodes_and_subgraphs_get_the_calls_config_and_run_under_the_node_name() -> None:
    seen: list[Any] = []

    def node(state: Counter, config: Any) -> dict[str, Any]:
        seen.append(config["configurable"]["user"])
        return {"x": state["x"] + 1}

    inner = chain(node).compile(name="inner graph")
    outer = chain(node, inner).compile()
    assert outer.invoke({"x": 0}, {"configurable": {"user": "kim"}}) == {"x": 2}
    assert seen == ["kim", "kim"]
    events: list[Any] = []
    with listen(events.append):
        outer.invoke({"x": 0}, {"configurable": {"user": "kim"}})
    assert [e["name"] for e in events if e["event"] == "on_chain_start"] == [
        "StateGraph", "step 1", "s0", "step 2", "s1", "step 1", "s0",
    ]
