"""Know what an app spends, never pay twice, and see every step: usage tracking, a budget, a
response cache and tracing around one chain.

    python examples/cost_cache_trace.py

Offline by default: the model is ``ScriptedChatModel``, a scripted test double (not an LLM) that
reports usage as a provider would; its model name is a real one so the price table applies. Set
OPENAI_API_KEY (or OPENAI_BASE_URL) to run the same code against a real model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from maru.cache import SQLiteCache
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate
from maru.tracing import RunStore, tracing
from maru.usage import Budget, track

QUESTIONS = ["What should I eat in Jeonju?", "Where is the best night view in Seoul?"]
REPLIES = [
    "Bibimbap at a market stall, then makgeolli with side dishes in the old town.",
    "Naksan Park along the city wall, after sunset.",
]


def make_model(cache: SQLiteCache) -> Any:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        from maru.models import OpenAIChat

        return OpenAIChat(cache=cache)
    return ScriptedChatModel(replies=REPLIES, cycle=True, model="gpt-4o-mini", cache=cache)


def run_demo(workdir: Path) -> dict[str, Any]:
    """Ask each question twice (the second time is a cache hit), stream one answer from the cache,
    all inside a usage tracker, a budget and a trace. Returns what a reader would look at."""
    cache = SQLiteCache(workdir / "cache.sqlite")
    store = RunStore(workdir / "traces.sqlite")
    prompt = ChatPromptTemplate.from_messages([("system", "You are a concise travel guide."), ("human", "{q}")])
    chain = prompt | make_model(cache) | StrOutputParser()
    answers = []
    with tracing([store]), track() as usage, Budget(max_cost=0.10, max_requests=10) as budget:
        for _round in range(2):
            answers += [chain.invoke({"q": q}, {"tags": ["demo"]}) for q in QUESTIONS]
        streamed = list(chain.stream({"q": QUESTIONS[0]}))
    traces = store.list_traces(limit=10)
    return {
        "answers": answers,
        "streamed": streamed,
        "usage": usage,
        "budget": budget,
        "traces": traces,
        "last_trace": store.get_trace(traces[-1].trace_id),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp))
    usage = result["usage"]
    print(f"answers: {len(result['answers'])}, streamed pieces from the cache: {len(result['streamed'])}")
    print(f"requests sent: {usage.requests}, cache hits: {usage.cache_hits}")
    print(f"tokens billed: {usage.total.total_tokens}, cost: ${usage.total_cost:.6f}")
    print(f"budget: {result['budget'].requests} requests charged of 10 allowed")
    print(f"traces recorded: {len(result['traces'])}")
    for run in result["last_trace"]:
        print(f"  {run.kind:7} {run.name}")


if __name__ == "__main__":
    main()
