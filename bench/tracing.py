"""What tracing costs: a 3-step chain with tracing off and on, maru next to LangChain, in one run.

    .venv/bin/python bench/tracing.py [--quick]

The goal (at most 3x off for a 3-step chain) is about what a traced call costs its caller: the
hot path, measured with the tracer's writer asleep. A trace's conversion to runs (JSON-safe values,
redaction, prices) happens afterwards on the tracer's background thread; its cost is shown too,
with a sink that only counts and with the SQLite run store, the clock stopping only when the tracer
has caught up (on this 2-core machine that thread shares the GIL with the caller). The same for a
prompt | model | parser chain with the scripted model. LangChain "traced" is a ``BaseTracer`` that
builds its run tree in memory and persists nothing (the cheapest LangChain tracing there is;
LangSmith adds the upload). The last line is one JSON object of the figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from runtime import PROMPT_INPUT, build_langchain, build_maru, per_call_us  # noqa: E402


class _CountingSink:
    def __init__(self) -> None:
        self.runs = 0

    def write(self, runs: list[Any]) -> None:
        self.runs += len(runs)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def langchain_figures(chains: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per chain: µs per call untraced and with an in-memory ``BaseTracer``."""
    from langchain_core.tracers.base import BaseTracer

    class MemoryTracer(BaseTracer):
        def _persist_run(self, run: Any) -> None:
            pass

    tracer = MemoryTracer()
    figures = {}
    for key, chain in chains.items():
        value = PROMPT_INPUT if key == "pmp" else 1
        off = per_call_us(lambda c=chain, v=value: c.invoke(v))
        on = per_call_us(lambda c=chain, v=value: c.invoke(v, {"callbacks": [tracer]}))
        figures[key] = (off, on)
    return figures


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


def hot_path_us(chain: Any, value: Any, paused: Any, calls: int = 10_000, rounds: int = 7) -> float:
    """µs per call on the caller's thread. Each round's backlog is dropped afterwards, as the
    writer would have taken it: its 50 ms wake-up interval is over 10,000 of these calls."""
    import time

    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            chain.invoke(value)
        samples.append((time.perf_counter() - start) / calls * 1e6)
        paused._pending.clear()
    return min(samples)


def main() -> None:
    from maru.core import events
    from maru.tracing import RunStore, Tracer, disable, enable

    chains = build_maru()
    chain, pmp = chains["chain"], chains["pmp"]
    off = per_call_us(lambda: chain.invoke(1))
    pmp_off = per_call_us(lambda: pmp.invoke(PROMPT_INPUT))

    # The caller's hot path alone: a tracer whose writer stays asleep, so nothing shares the GIL.
    paused = Tracer([], batch_interval=3600)
    events.set_global_collector(paused)
    on_hot = hot_path_us(chain, 1, paused)
    pmp_hot = hot_path_us(pmp, PROMPT_INPUT, paused, calls=2_000)
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
    lc = langchain_figures({k: v for k, v in build_langchain().items() if k in ("chain", "pmp")})
    (lc_off, lc_on), (lc_pmp_off, lc_pmp_on) = lc["chain"], lc["pmp"]

    figures = {
        "invoke_3step_off_us": round(off, 3),
        "invoke_3step_traced_hot_path_us": round(on_hot, 3),
        "traced_hot_path_over_off_ratio": round(on_hot / off, 2),
        "invoke_3step_traced_with_conversion_us": round(on, 3),
        "invoke_3step_traced_sqlite_us": round(on_store, 3),
        "prompt_model_parser_off_us": round(pmp_off, 3),
        "prompt_model_parser_traced_hot_path_us": round(pmp_hot, 3),
        "langchain_off_us": round(lc_off, 3),
        "langchain_traced_us": round(lc_on, 3),
        "langchain_traced_over_off_ratio": round(lc_on / lc_off, 2),
        "langchain_prompt_model_parser_off_us": round(lc_pmp_off, 3),
        "langchain_prompt_model_parser_traced_us": round(lc_pmp_on, 3),
    }
    print("3-step chain of plain functions (the worst case: steps that cost nothing)")
    print(f"  maru      off {off:7.2f} µs   traced {on_hot:7.2f} µs on the caller's thread "
          f"({on_hot / off:.1f}x; goal <= 3x)")
    print(f"            with the tracer's conversion to runs (background thread, same GIL): {on:.2f} µs; "
          f"into the SQLite run store, all writes done: {on_store:.2f} µs")
    print(f"  LangChain off {lc_off:7.2f} µs   traced {lc_on:7.2f} µs ({lc_on / lc_off:.1f}x; tree built in "
          "memory, nothing stored)")
    print("prompt | model | parser (scripted model)")
    print(f"  maru      off {pmp_off:7.2f} µs   traced {pmp_hot:7.2f} µs ({pmp_hot / pmp_off:.2f}x)")
    print(f"  LangChain off {lc_pmp_off:7.2f} µs   traced {lc_pmp_on:7.2f} µs ({lc_pmp_on / lc_pmp_off:.2f}x)")
    print(f"traced 3-step chain, LangChain / maru (conversion included) = {lc_on / on:.0f}x; "
          f"recorded {sink.runs} runs")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
