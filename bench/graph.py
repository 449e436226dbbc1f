"""State graphs, maru next to LangGraph in one run: the overhead of a run, and what checkpoints cost.

    .venv/bin/python bench/graph.py [--quick]

Workloads (each built by one function from the API both libraries share: StateGraph, add_node,
add_edge, add_conditional_edges, compile):
- a 3-node chain, invoked without a checkpointer (µs per invoke, and per node);
- a 5-way fan-out joined by one node (µs per invoke);
- the 3-node chain with a SQLite checkpointer, one new thread per invoke (µs per invoke, next to
  the bare cost of one SQLite commit per superstep on the same disk: with SQLite's default WAL
  folding, and with the saver's; maru's chain and the two bare commits are timed in alternating
  rounds, best round of each, so that their ratio survives a busy machine);
- a conversation of 200 steps on one thread, each step appending one message: checkpoint bytes.

LangGraph's side runs when ``langgraph`` (and ``langgraph-checkpoint-sqlite`` for the SQLite
rows) is installed; otherwise maru's figures are printed alone. The last line is one JSON object.
"""

import itertools
import json
import operator
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).parent))
from runtime import QUICK, per_call_us  # noqa: E402

from maru.graph.sqlite import WAL_CHECKPOINT_PAGES  # noqa: E402

STEPS = 200
MESSAGE = "The museum opens at nine; the palace guard changes at ten and at two. " * 2


# --------------------------------------------------------------------------- the two libraries
def maru_api() -> SimpleNamespace:
    from maru import graph
    from maru.messages import AIMessage

    return SimpleNamespace(
        name="maru", StateGraph=graph.StateGraph, START=graph.START, END=graph.END,
        add_messages=graph.add_messages, AIMessage=AIMessage, sqlite_saver=graph.SQLiteSaver,
    )


def langgraph_api() -> SimpleNamespace | None:
    try:
        from langchain_core.messages import AIMessage
        from langgraph.graph import END, START, StateGraph
        from langgraph.graph.message import add_messages
    except ImportError:
        return None
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        sqlite_saver = None
    else:
        def sqlite_saver(path: Path) -> Any:
            return SqliteSaver(sqlite3.connect(path, check_same_thread=False))
    return SimpleNamespace(
        name="LangGraph", StateGraph=StateGraph, START=START, END=END,
        add_messages=add_messages, AIMessage=AIMessage, sqlite_saver=sqlite_saver,
    )


# --------------------------------------------------------------------------- the graphs
class Number(TypedDict):
    x: int
class Gathered(TypedDict):
    x: int
    log: Annotated[list, operator.add]


def chain3(api: SimpleNamespace, checkpointer: Any = None) -> Any:
    graph = api.StateGraph(Number)
    graph.add_node("a", lambda s: {"x": s["x"] + 1})
    graph.add_node("b", lambda s: {"x": s["x"] * 2})
    graph.add_node("c", lambda s: {"x": s["x"] - 3})
    graph.add_edge(api.START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", api.END)
    return graph.compile(checkpointer=checkpointer)


def fan_out5(api: SimpleNamespace) -> Any:
    graph = api.StateGraph(Gathered)
    names = [f"w{i}" for i in range(5)]
    for name in names:
        graph.add_node(name, lambda s, name=name: {"log": [name]})
        graph.add_edge(api.START, name)
    graph.add_node("join", lambda s: {"x": len(s["log"])})
    graph.add_edge(names, "join")
    graph.add_edge("join", api.END)
    return graph.compile()


def conversation(api: SimpleNamespace, checkpointer: Any) -> Any:
    """One node that appends a message per step, looping until the thread holds STEPS messages."""
    class Conversation(TypedDict):  # annotations are evaluated here: no `from __future__ import annotations`
        messages: Annotated[list, api.add_messages]

    graph = api.StateGraph(Conversation)
    graph.add_node("talk", lambda s: {"messages": [api.AIMessage(f"step {len(s['messages'])}: {MESSAGE}")]})
    graph.add_edge(api.START, "talk")
    graph.add_conditional_edges("talk", lambda s: api.END if len(s["messages"]) >= STEPS else "talk")
    return graph.compile(checkpointer=checkpointer)


# --------------------------------------------------------------------------- measuring
def overhead(api: SimpleNamespace, folder: Path, checkpointed: bool = True) -> dict[str, float]:
    figures = {}
    chain = chain3(api)
    assert chain.invoke({"x": 1})["x"] == 1
    figures["chain3_us"] = per_call_us(lambda: chain.invoke({"x": 1}))
    fan = fan_out5(api)
    assert fan.invoke({"x": 0, "log": []})["x"] == 5
    figures["fanout5_us"] = per_call_us(lambda: fan.invoke({"x": 0, "log": []}))
    if checkpointed and api.sqlite_saver is not None:
        figures["chain3_sqlite_us"] = per_call_us(checkpointed_chain(api, folder), min_time=0.5)
    return figures


def checkpointed_chain(api: SimpleNamespace, folder: Path) -> Callable[[], Any]:
    """One invoke of the SQLite-checkpointed chain, on a new thread each time."""
    saved = chain3(api, api.sqlite_saver(folder / f"{api.name}-chain.sqlite"))
    threads = itertools.count()
    return lambda: saved.invoke({"x": 1}, {"configurable": {"thread_id": str(next(threads))}})


def bare_commit(folder: Path, wal_pages: int | None = None) -> Callable[[], Any]:
    """One INSERT of a small row, committed, in WAL mode with synchronous=NORMAL (what the saver
    does), keyed like the checkpointed chain's rows: a new thread id (as text) per four steps.
    ``wal_pages``: fold the WAL that often, as the saver does (default: SQLite's 1,000 pages)."""
    conn = sqlite3.connect(folder / f"bare-{wal_pages}.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if wal_pages is not None:
        conn.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
    conn.execute("CREATE TABLE t (k TEXT, step INTEGER, body TEXT, PRIMARY KEY (k, step)) WITHOUT ROWID")
    keys = itertools.count()
    body = json.dumps({"w": [["a", {"x": 2}]], "n": ["b"], "m": {"source": "loop"}})
    return lambda: conn.execute("INSERT INTO t VALUES (?, ?, ?)", (str((n := next(keys)) // 4), n % 4, body))


def best_of_interleaved_us(
    calls: dict[str, Callable[[], Any]], rounds: int = 3 if QUICK else 7, round_s: float = 0.1 if QUICK else 0.5
) -> dict[str, float]:
    """µs per call of each, timed in alternating rounds of ``round_s`` and taken from its best
    round: on a shared machine other work only ever adds time, and alternating gives each the
    same quiet moments, so their ratio holds where separate medians drift apart. A round is long
    enough to hold the WAL folds of each (one per ~2,000 checkpointed invokes at 8,192 pages)."""
    best = dict.fromkeys(calls, float("inf"))
    loops = {}
    for name, fn in calls.items():
        fn()
        start = time.perf_counter()
        fn()
        loops[name] = max(1, int(round_s / max(time.perf_counter() - start, 1e-6)))
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / loops[name] * 1e6)
    return best


def checkpoint_cost(api: SimpleNamespace, folder: Path) -> dict[str, float]:
    """maru's checkpointed chain and the bare commits, interleaved (see best_of_interleaved_us)."""
    best = best_of_interleaved_us({
        "maru_chain3_sqlite_us": checkpointed_chain(api, folder),
        "sqlite_commit_us": bare_commit(folder),
        "sqlite_commit_saver_wal_us": bare_commit(folder, WAL_CHECKPOINT_PAGES),
    })
    return {key: round(value, 2) for key, value in best.items()}


def checkpoint_bytes(api: SimpleNamespace, folder: Path) -> dict[str, int]:
    """File size (after folding the WAL in) once one thread has run STEPS steps, and the pages in
    use (file less free pages, which a replaced snapshot leaves for reuse)."""
    path = folder / f"{api.name}-conversation.sqlite"
    app = conversation(api, api.sqlite_saver(path))
    out = app.invoke({"messages": []}, {"configurable": {"thread_id": "long"}, "recursion_limit": STEPS + 10})
    assert len(out["messages"]) == STEPS
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, free, page_size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    return {"file_bytes": pages * page_size, "used_bytes": (pages - free) * page_size, "message_bytes": STEPS * len(MESSAGE)}


def main() -> None:
    apis = [maru_api()]
    if (lg := langgraph_api()) is not None:
        apis.append(lg)
    else:
        print("langgraph is not installed: maru's figures alone (pip install langgraph langgraph-checkpoint-sqlite)")
    figures: dict[str, Any] = {"quick": QUICK}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures.update(checkpoint_cost(apis[0], folder))
        for api in apis:
            for key, value in overhead(api, folder, checkpointed=api is not apis[0]).items():
                figures[f"{api.name}_{key}"] = round(value, 2)
            if api.sqlite_saver is not None:
                for key, value in checkpoint_bytes(api, folder).items():
                    figures[f"{api.name}_{STEPS}_steps_{key}"] = value
    report(figures)
    print(json.dumps(figures))


def report(f: dict[str, Any]) -> None:
    def ratio(key: str) -> str:
        return f" — LangGraph {f[f'LangGraph_{key}']:.1f} µs, {f[f'LangGraph_{key}'] / f[f'maru_{key}']:.1f}x" if f"LangGraph_{key}" in f else ""

    print(f"3-node chain:      maru {f['maru_chain3_us']:.1f} µs/invoke ({f['maru_chain3_us'] / 3:.1f} µs/node){ratio('chain3_us')}")
    print(f"5-way fan-out+join: maru {f['maru_fanout5_us']:.1f} µs/invoke{ratio('fanout5_us')}")
    print(f"3-node chain, SQLite checkpoint per step (4 commits/invoke): maru {f['maru_chain3_sqlite_us']:.1f} µs"
          f"{ratio('chain3_sqlite_us')}; bare commit {f['sqlite_commit_us']:.1f} µs "
          f"(4 commits = {4 * f['sqlite_commit_us']:.1f} µs, maru at {f['maru_chain3_sqlite_us'] / (4 * f['sqlite_commit_us']):.2f}x of that); "
          f"with the saver's WAL folding every {WAL_CHECKPOINT_PAGES} pages, bare commit {f['sqlite_commit_saver_wal_us']:.1f} µs "
          f"(maru at {f['maru_chain3_sqlite_us'] / (4 * f['sqlite_commit_saver_wal_us']):.2f}x)")
    for name in ("maru", "LangGraph"):
        if f"{name}_{STEPS}_steps_file_bytes" in f:
            print(f"{STEPS} steps of a growing conversation, SQLite file: {name} {f[f'{name}_{STEPS}_steps_file_bytes']:,} bytes, "
                  f"{f[f'{name}_{STEPS}_steps_used_bytes']:,} in use (the messages themselves: {f[f'{name}_{STEPS}_steps_message_bytes']:,})")


if __name__ == "__main__":
    main()
