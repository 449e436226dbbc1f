"""The local model: maru and LangChain over the raw ``openai`` SDK against llama.cpp's server, and
the in-process model against that server, in one run.

    .venv/bin/python bench/local_model.py [--quick]

1. **Per-call overhead.** One llama.cpp server (``python -m llama_cpp.server``, the bundled
   SmolLM2-135M-Instruct, loopback) answers the raw SDK, maru's ``OpenAIChat`` and LangChain's
   ``ChatOpenAI``: the same one-line prompt, ``max_tokens=1``, the three clients taking turns for N
   rounds; figures are medians in ms, overhead is a client's median minus the raw SDK's.

   LangChain out of the box takes seconds per call here (4.2 s in an earlier run). Not a network
   lookup: ``ChatOpenAI`` renames ``max_tokens`` to ``max_completion_tokens`` (OpenAI's newer name),
   which llama.cpp's Python server ignores, so the model writes until it stops — hundreds of tokens
   instead of one. A user neutralises it with ``ChatOpenAI(..., extra_body={"max_tokens": 1})``,
   which sends the old name too; the comparison uses that, and one out-of-the-box call is shown.
2. **In process vs the server.** ``LlamaCppChat`` (llama.cpp in this process) and ``OpenAIChat``
   on the server, both streaming the same questions with the same thread count, ``max_tokens=64``:
   time to first token and decode speed (tokens after the first / the time they took). The two
   prompts differ in their template (the GGUF's own vs the server's ``chatml-function-calling``),
   so their prompt token counts are printed too.

The last line is one JSON object of the figures. Needs the ``local`` and ``bench`` extras.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_server import bundled_gguf, llama_server  # noqa: E402  (the tests' server fixture)

QUICK = "--quick" in sys.argv
ROUNDS = 15 if QUICK else 60
QUESTIONS = 2 if QUICK else 5
PROMPT = "Say hi."
OPEN_QUESTION = "What should I see in Paris?"
"""For the out-of-the-box LangChain call: a question that invites a long answer."""
DECODE_TOKENS = 64
THREADS = max(1, (os.cpu_count() or 2) // 2)  # llama-cpp-python's own default, given to both sides


# --------------------------------------------------------------------------- 1. per-call overhead
def clients(base_url: str, model: str) -> dict[str, Callable[[], Any]]:
    """One call of ``PROMPT`` with ``max_tokens=1`` per client."""
    import openai
    from langchain_openai import ChatOpenAI

    from maru.models import OpenAIChat

    raw = openai.OpenAI(base_url=base_url, api_key="none")
    maru = OpenAIChat(model, base_url=base_url, api_key="none", max_tokens=1)
    langchain = ChatOpenAI(
        model=model, base_url=base_url, api_key="none", max_tokens=1, extra_body={"max_tokens": 1}
    )
    messages = [{"role": "user", "content": PROMPT}]
    return {
        "raw_sdk": lambda: raw.chat.completions.create(model=model, messages=messages, max_tokens=1),
        "maru": lambda: maru.invoke(PROMPT),
        "langchain": lambda: langchain.invoke(PROMPT),
    }


def interleaved_medians_ms(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Each client once per round, in turn (the order rotating each round), so drift in the
    server's speed and any cost of going first or last hit all alike."""
    for call in calls.values():
        call()  # warm up: connection pools, lazy imports, the server's prompt cache
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for round_ in range(rounds):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def langchain_out_of_the_box(base_url: str, model: str) -> tuple[float, int]:
    """Seconds and output tokens of one ``ChatOpenAI(max_tokens=1)`` call without the fix."""
    from langchain_openai import ChatOpenAI

    model_ = ChatOpenAI(model=model, base_url=base_url, api_key="none", max_tokens=1)
    start = time.perf_counter()
    reply = model_.invoke(OPEN_QUESTION)
    return time.perf_counter() - start, int((reply.usage_metadata or {}).get("output_tokens", 0))


# --------------------------------------------------------------------------- 2. in process vs server
def questions() -> Iterator[str]:
    """Different questions, so neither side answers from a cached prompt."""
    for i in range(QUESTIONS):
        yield f"Question {i + 1}: describe a walk through an old city in a few sentences."


def stream_figures(stream: Callable[[str], Iterator[Any]]) -> dict[str, float]:
    """Median time to first token (ms) and decode speed (tokens/s) over ``questions()``."""
    first_ms, rates = [], []
    for question in questions():
        start = time.perf_counter()
        stamps = [time.perf_counter() for chunk in stream(question) if chunk.content]
        if len(stamps) < 2:
            continue
        first_ms.append((stamps[0] - start) * 1e3)
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"ttft_ms": round(statistics.median(first_ms), 1), "tokens_per_s": round(statistics.median(rates), 1)}


def prompt_tokens(model: Any) -> int:
    reply = model.invoke(next(questions()), max_tokens=1)
    return int(reply.usage.input_tokens) if reply.usage else 0


def in_process_vs_server(base_url: str, model: str) -> dict[str, Any]:
    from maru.models import OpenAIChat
    from maru.models.llamacpp import LlamaCppChat

    local = LlamaCppChat(max_tokens=DECODE_TOKENS, n_threads=THREADS, repeat_penalty=1.0)
    served = OpenAIChat(model, base_url=base_url, api_key="none", temperature=0, max_tokens=DECODE_TOKENS)
    start = time.perf_counter()
    local.llama()
    load_s = time.perf_counter() - start
    figures: dict[str, Any] = {"in_process_load_s": round(load_s, 2)}
    for name, chat in (("in_process", local), ("server", served)):
        chat.invoke(PROMPT, max_tokens=1)  # warm up
        figures[name] = {**stream_figures(chat.stream), "prompt_tokens": prompt_tokens(chat)}
    return figures


# --------------------------------------------------------------------------- report
def main() -> None:
    with llama_server(bundled_gguf(), n_threads=THREADS) as server:
        medians = interleaved_medians_ms(clients(server.base_url, server.model), ROUNDS)
        lc_seconds, lc_tokens = langchain_out_of_the_box(server.base_url, server.model)
        local = in_process_vs_server(server.base_url, server.model)
    raw = medians["raw_sdk"]
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "threads": THREADS,
        **{f"{name}_ms": value for name, value in medians.items()},
        "maru_overhead_ms": round(medians["maru"] - raw, 2),
        "langchain_overhead_ms": round(medians["langchain"] - raw, 2),
        "maru_ratio": round(medians["maru"] / raw, 3),
        "langchain_ratio": round(medians["langchain"] / raw, 3),
        "langchain_out_of_the_box_s": round(lc_seconds, 2),
        "langchain_out_of_the_box_output_tokens": lc_tokens,
        **local,
    }
    print(f"per call, max_tokens=1, median of {ROUNDS} interleaved rounds (ms):")
    for name in ("raw_sdk", "maru", "langchain"):
        print(f"  {name:10} {medians[name]:8.2f}  x{medians[name] / raw:.3f} of the raw SDK")
    print(
        f"LangChain out of the box ({OPEN_QUESTION!r}): {lc_seconds:.2f} s for one call, {lc_tokens} "
        "output tokens at max_tokens=1: "
        "ChatOpenAI sends max_completion_tokens, which llama.cpp's server ignores. Fix used above: "
        'ChatOpenAI(..., extra_body={"max_tokens": 1}).'
    )
    print(f"in process vs server ({THREADS} thread(s), max_tokens={DECODE_TOKENS}, {QUESTIONS} questions):")
    for name in ("in_process", "server"):
        f = local[name]
        print(f"  {name:10} first token {f['ttft_ms']:7.1f} ms, {f['tokens_per_s']:6.1f} tokens/s, "
              f"prompt {f['prompt_tokens']} tokens")
    print(f"  model load in process: {local['in_process_load_s']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
