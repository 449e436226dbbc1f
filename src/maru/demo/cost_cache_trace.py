"""Know what an app spends, never pay twice, and see every step: usage tracking, a budget, a
response cache and tracing around one chain.

The model is ``ScriptedChatModel`` unless the caller passes another: a scripted test double (not
an LLM) that reports usage as a provider would; its model name is a real one so the price table
applies. ``examples/cost_cache_trace.py`` passes a real model when one is configured.
"""

from __future__ import annotations

from collections.abc import Callable
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


def scripted_model(cache: SQLiteCache) -> Any:
    return ScriptedChatModel(replies=REPLIES, cycle=True, model="gpt-4o-mini", cache=cache)


def run_demo(workdir: Path, make_model: Callable[[SQLiteCache], Any] = scripted_model) -> dict[str, Any]:
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
