"""What tracing costs: a 3-step chain with tracing off and on, maru next to LangChain, in one run.

    .venv/bin/python bench/tracing.py [--quick]

maru "on" is every run recorded on the hot path *and* converted to runs on the tracer's
background thread (the clock stops when the tracer has caught up); also shown: the hot path alone,
and the whole thing with the SQLite run store written; LangChain "on" is a ``BaseTracer`` that builds its run tree in memory and
persists nothing (the cheapest LangChain tracing there is — LangSmith adds the upload). The last line
is one JSON object of the figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from runtime import f1, f2, f3, per_call_us  # noqa: E402


class _CountingSink:
    def __init__(self) -> None:
        self.runs = 0

    def write(self, runs: list[Any]) -> None:
        self.runs += len(runs)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def langchain_figures() -> tuple[float, float]:
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tracers.base import BaseTracer

    class MemoryTracer(BaseTracer):
        def _persist_run(self, run: Any) -> None:
            pass

    chain = RunnableLambda(f1) | f2 | f3
    off = per_call_us(lambda: chain.invoke(1))
    tracer = MemoryTracer()
    on = per_call_us(lambda: chain.invoke(1, {"callbacks": [tracer]}))
    return off, on


def traced_us(chain: Any, tracer: Any, calls: int = 20_000) -> float:
    """µs per call including the tracer's background work: the clock stops only once every trace
    has been converted and written (on 2 cores the background thread shares the GIL)."""
    import statistics
    import time

    samples = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            chain.invoke(1)
        tracer.flush(300)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def hot_path_us(chain: Any, paused: Any, calls: int = 10_000, rounds: int = 7) -> float:
    """µs per call on the caller's thread. Each round's backlog is dropped afterwards, as the
    writer would have taken it: its 50 ms wake-up interval is about 10,000 of these calls."""
    import time

    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            chain.invoke(1)
        samples.append((time.perf_counter() - start) / calls * 1e6)
        paused._pending.clear()
    return min(samples)


def main() -> None:
    from maru import runnable
    from maru.tracing import RunStore, disable, enable

    chain = runnable(f1) | f2 | f3
    off = per_call_us(lambda: chain.invoke(1))
    from maru.core import events
    from maru.tracing import Tracer

    # The caller's hot path alone: a tracer whose writer stays asleep, so nothing shares the GIL.
    paused = Tracer([], batch_interval=3600)
    events.set_global_collector(paused)
    on_hot = hot_path_us(chain, paused)
    events.set_global_collector(None)
    paused.close()

    sink = _CountingSink()
    tracer = enable([sink])
    on = traced_us(chain, tracer)
    disable()
    with tempfile.TemporaryDirectory() as tmp:
        tracer = enable([RunStore(Path(tmp) / "traces.sqlite")])
        on_store = traced_us(chain, tracer, 5_000)
        disable()
    lc_off, lc_on = langchain_figures()

    figures = {
        "invoke_3step_off_us": round(off, 3),
        "invoke_3step_traced_hot_path_us": round(on_hot, 3),
        "invoke_3step_traced_us": round(on, 3),
        "traced_over_off_ratio": round(on / off, 2),
        "invoke_3step_traced_sqlite_us": round(on_store, 3),
        "langchain_off_us": round(lc_off, 3),
        "langchain_traced_us": round(lc_on, 3),
        "langchain_traced_over_off_ratio": round(lc_on / lc_off, 2),
    }
    print(f"maru      off {off:8.2f} µs   traced {on:8.2f} µs   ({on / off:.1f}x; goal <= 3x) — including the "
          "background conversion of each trace to runs")
    print(f"          caller's hot path alone {on_hot:.2f} µs ({on_hot / off:.1f}x); "
          f"into the SQLite run store, all writes done: {on_store:.2f} µs ({on_store / off:.1f}x)")
    print(f"LangChain off {lc_off:8.2f} µs   traced {lc_on:8.2f} µs   ({lc_on / lc_off:.1f}x)")
    print(f"traced: LangChain / maru = {lc_on / on:.0f}x; recorded {sink.runs} runs")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
