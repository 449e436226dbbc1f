"""Runtime overhead, maru next to LangChain (langchain-core) and plain Python, in one run.

    .venv/bin/python bench/runtime.py [--quick]

Each figure is microseconds per call (the median of several timed rounds); ratios are LangChain / maru
and maru / plain Python. The last line is one JSON object of every figure, for scripts to read.
Needs the `bench` extra (langchain-core, langchain-openai).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 7


def _time_loops(fn: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return time.perf_counter() - start


def per_call_us(fn: Callable[[], Any], min_time: float = 0.05 if QUICK else 0.2) -> float:
    """Median over rounds of the mean time per call; each round runs about ``min_time`` seconds."""
    fn()  # warm up
    loops = 1
    while (elapsed := _time_loops(fn, loops)) < 0.01:
        loops *= 4
    loops = max(1, int(loops * min_time / elapsed))
    return statistics.median(_time_loops(fn, loops) / loops * 1e6 for _ in range(ROUNDS))


def import_time_s(statement: str, runs: int = 3 if QUICK else 7) -> float:
    """Median wall time of a fresh interpreter running ``statement``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- the workloads
def f1(x: int) -> int:
    return x + 1


def f2(x: int) -> int:
    return x * 2


def f3(x: int) -> int:
    return x - 3


def plain_chain(x: int) -> int:
    return f3(f2(f1(x)))


def plain_parallel(x: int) -> dict[str, int]:
    return {"a": f1(x), "b": f2(x), "c": f3(x)}


REPLY = "Visit Gyeongbokgung at opening time, then walk to Bukchon."
PROMPT_MESSAGES = [("system", "You are a travel guide for {city}."), ("human", "{question}")]
PROMPT_INPUT = {"city": "Seoul", "question": "What should I see first?"}


def plain_prompt_model_parser(values: dict[str, str]) -> str:
    messages = [
        {"role": "system", "content": f"You are a travel guide for {values['city']}."},
        {"role": "user", "content": values["question"]},
    ]
    reply = {"role": "assistant", "content": REPLY, "n": len(messages)}
    return reply["content"]


def build_maru() -> dict[str, Any]:
    from maru import parallel, runnable
    from maru.models import ScriptedChatModel
    from maru.parsers import StrOutputParser
    from maru.prompts import ChatPromptTemplate

    io_f = [runnable(f, io_bound=True) for f in (f1, f2, f3)]
    return {
        "chain": runnable(f1) | f2 | f3,
        "parallel": parallel(a=f1, b=f2, c=f3),
        "parallel_threads": parallel(a=io_f[0], b=io_f[1], c=io_f[2]),
        "pmp": ChatPromptTemplate.from_messages(PROMPT_MESSAGES)
        | ScriptedChatModel(replies=[REPLY], cycle=True)
        | StrOutputParser(),
    }


def build_langchain() -> dict[str, Any]:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnableParallel

    return {
        "chain": RunnableLambda(f1) | f2 | f3,
        "parallel": RunnableParallel(a=f1, b=f2, c=f3),
        "pmp": ChatPromptTemplate.from_messages(PROMPT_MESSAGES)
        | FakeListChatModel(responses=[REPLY])
        | StrOutputParser(),
    }


async def drain_events(chain: Any, value: Any, **kwargs: Any) -> int:
    n = 0
    async for _ in chain.astream_events(value, **kwargs):
        n += 1
    return n


def main() -> None:
    mr, lc = build_maru(), build_langchain()
    assert mr["chain"].invoke(1) == lc["chain"].invoke(1) == plain_chain(1)
    assert mr["parallel"].invoke(1) == lc["parallel"].invoke(1) == plain_parallel(1)
    assert mr["pmp"].invoke(PROMPT_INPUT) == lc["pmp"].invoke(PROMPT_INPUT) == REPLY

    figures: dict[str, float] = {}
    rows: list[tuple[str, float, float | None, float | None, str]] = []

    def row(key: str, label: str, maru_us: float, lc_us: float | None, plain_us: float | None, goal: str) -> None:
        figures[f"{key}_us"] = round(maru_us, 3)
        if lc_us is not None:
            figures[f"{key}_langchain_us"] = round(lc_us, 3)
        if plain_us is not None:
            figures[f"{key}_plain_us"] = round(plain_us, 3)
        rows.append((label, maru_us, lc_us, plain_us, goal))

    row("invoke_3step", "3-step chain invoke",
        per_call_us(lambda: mr["chain"].invoke(1)), per_call_us(lambda: lc["chain"].invoke(1)),
        per_call_us(lambda: plain_chain(1)), "<= 10 us")
    row("parallel_3", "parallel of 3 (pure functions, inline)",
        per_call_us(lambda: mr["parallel"].invoke(1)), per_call_us(lambda: lc["parallel"].invoke(1)),
        per_call_us(lambda: plain_parallel(1)), "<= 20 us")
    row("parallel_3_threads", "parallel of 3 (io_bound, on threads)",
        per_call_us(lambda: mr["parallel_threads"].invoke(1)), per_call_us(lambda: lc["parallel"].invoke(1)),
        None, "(LangChain always uses threads)")
    row("prompt_model_parser", "prompt -> scripted model -> parser",
        per_call_us(lambda: mr["pmp"].invoke(PROMPT_INPUT)), per_call_us(lambda: lc["pmp"].invoke(PROMPT_INPUT)),
        per_call_us(lambda: plain_prompt_model_parser(PROMPT_INPUT)), "<= 15 us")
    items = list(range(1000))
    row("batch_1000_per_item", "batch of 1,000, per item",
        per_call_us(lambda: mr["chain"].batch(items), 0.5) / 1000,
        per_call_us(lambda: lc["chain"].batch(items), 0.5) / 1000,
        per_call_us(lambda: [plain_chain(x) for x in items], 0.5) / 1000, "<= 5 us/item")
    row("astream_events_3step", "astream_events, 3-step chain",
        per_call_us(lambda: asyncio.run(drain_events(mr["chain"], 1)), 0.5),
        per_call_us(lambda: asyncio.run(drain_events(lc["chain"], 1, version="v2")), 0.5),
        per_call_us(lambda: asyncio.run(asyncio.sleep(0)), 0.5), "(plain = empty asyncio.run)")

    bare = import_time_s("pass")
    maru_import = import_time_s("import maru") - bare
    lc_import = import_time_s("import langchain_core.runnables") - bare
    maru_models = import_time_s("from maru.models import OpenAIChat") - bare
    lc_openai = import_time_s("from langchain_openai import ChatOpenAI") - bare
    figures.update(
        import_maru_s=round(maru_import, 4),
        import_langchain_runnables_s=round(lc_import, 4),
        import_maru_openai_chat_s=round(maru_models, 4),
        import_langchain_openai_s=round(lc_openai, 4),
        python_startup_s=round(bare, 4),
    )

    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a core dependency
        Console = None  # type: ignore[assignment]
    if Console is not None:
        table = Table(title="maru runtime overhead (µs per call, lower is better)")
        for col in ("workload", "maru", "LangChain", "LC / maru", "plain", "maru / plain", "goal"):
            table.add_column(col, justify="left" if col in ("workload", "goal") else "right")
        for label, m, lc_v, p, goal in rows:
            table.add_row(
                label, f"{m:.2f}",
                f"{lc_v:.2f}" if lc_v is not None else "-",
                f"{lc_v / m:.1f}x" if lc_v is not None else "-",
                f"{p:.2f}" if p is not None else "-",
                f"{m / p:.1f}x" if p is not None else "-",
                goal,
            )
        Console(width=130).print(table)
    print(f"import maru: {maru_import * 1000:.1f} ms over bare start-up ({bare * 1000:.1f} ms) — goal <= 100 ms; "
          f"import langchain_core.runnables: {lc_import * 1000:.1f} ms ({lc_import / maru_import:.1f}x)")
    print(f"from maru.models import OpenAIChat: {maru_models * 1000:.1f} ms; "
          f"from langchain_openai import ChatOpenAI: {lc_openai * 1000:.1f} ms ({lc_openai / maru_models:.1f}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
