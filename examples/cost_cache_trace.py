"""Know what an app spends, never pay twice, and see every step: usage tracking, a budget, a
response cache and tracing around one chain.

    python examples/cost_cache_trace.py

Offline by default: the model is ``ScriptedChatModel``, a scripted test double (not an LLM) that
reports usage as a provider would; its model name is a real one so the price table applies. Set
OPENAI_API_KEY (or OPENAI_BASE_URL) to run the same code against a real model. The chain and
what it records are in ``maru/demo/cost_cache_trace.py``, which ``maru demo`` runs too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from maru.cache import SQLiteCache
from maru.demo.cost_cache_trace import run_demo, scripted_model


def make_model(cache: SQLiteCache) -> Any:
    """A real model when an endpoint is configured, else the scripted test double."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        from maru.models import OpenAIChat

        return OpenAIChat(cache=cache)
    return scripted_model(cache)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp), make_model)
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
