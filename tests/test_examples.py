"""The programs in examples/ run offline and print what they promise; the parts they share with
``maru demo`` (in ``maru.demo``) do what the examples rely on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_chat_travel_guide_offline_uses_the_labelled_scripted_model() -> None:
    out = run_example("chat_travel_guide.py", "--scripted")
    assert "model: ScriptedChatModel (a scripted test double" in out
    assert "not a real LLM" in out
    # Part 1: the conversation, in order, then the model's (scripted) reply.
    lines = out.splitlines()
    roles = [line.split(":")[0].strip() for line in lines if line.strip().split(":")[0] in ("system", "human", "ai")]
    assert roles == ["system", "human", "ai", "human", "ai"]
    assert "ai: Head to Gwangjang Market" in out
    # Part 2: the prompt filled the question, the parser returned plain text.
    assert "question: I have two days and I love food and the sea." in out
    assert "answer:   Spend day one at Jagalchi Fish Market" in out
    assert "AIMessage" not in out
    # Part 3: streamed pieces join back to the exact reply.
    assert (
        "answer:   Gwangalli Beach: watch the sun go down, then stay for the lights on the Gwangan "
        "Bridge. The seafood restaurants along the beach stay open late.\n"
    ) in out


@pytest.mark.real_model
def test_chat_travel_guide_answers_with_the_local_model_by_default() -> None:
    out = run_example("chat_travel_guide.py")
    assert "model: SmolLM2-135M-Instruct" in out and "(local, in process with llama.cpp)" in out
    assert out.count("answer:   ") == 2 and "AIMessage" not in out


def test_chat_travel_guide_prompt_carries_history_and_city() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import chat_travel_guide as guide
    finally:
        sys.path.remove(str(EXAMPLES))
    from maru.messages import AIMessage, HumanMessage
    from maru.models import ScriptedChatModel

    model = ScriptedChatModel(replies=["ok"])
    chain = guide.build_chain(model)
    history = [HumanMessage("earlier question"), AIMessage("earlier answer")]
    assert chain.invoke({"city": "Jeju", "history": history, "question": "and now?"}) == "ok"
    sent = model.calls[0].messages
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]
    assert "Jeju" in sent[0].text
    assert sent[-1].text == "and now?"


def test_composition_tour_offline() -> None:
    out = run_example("composition_tour.py")
    # invoke: every stage contributed to the plan
    assert "* Seoul (sunny)\n  - plan: 3 days: stay central" in out
    assert "tip: get a T-money card" in out  # route picked the Korea tip
    assert "budget: 522,000 KRW" in out  # fallback rate 1450 KRW/EUR x 3 days x 120 EUR
    assert "timed out 1x and was retried" in out
    # batch: four plans, bounded concurrency
    assert out.count("* ") >= 5
    assert "plan: 5 days: base yourself in one area" in out  # branch took the long-trip path
    assert "tip: check opening days" in out  # route's default for Lisbon
    # max_concurrency=2 bounds the in-flight requests (1 only if the pool was too slow to help)
    assert re.search(r"\(at most [12] weather requests were in flight at once\)", out)
    # stream: chunk boundaries fall between words
    assert "|Kyoto| |(sunny)|" in out
    # astream_events: the named outer run, the retried and the fallen-back steps
    assert "on_chain_start       trip_planner" in out
    assert "on_chain_error       weather  TimeoutError" in out
    assert "on_chain_error       live_rate  ConnectionError" in out
    assert "offline_rate" in out


def test_composition_tour_rows_cover_every_primitive() -> None:
    from maru.demo.composition_tour import run_tour

    rows = dict(run_tour())
    named = " ".join(rows)
    for primitive in (
        "|", "dict", "parallel", "passthrough", "assign", "pick", "branch", "route", "with_retry",
        "with_fallbacks", "bind", "with_config", "batch(max_concurrency=2)", "stream", "astream_events",
    ):
        assert primitive in named
    assert re.search(r"at most [12] in flight", rows["batch(max_concurrency=2)"])
    assert "weather (TimeoutError), live_rate (ConnectionError)" in rows["astream_events, with_config"]


def test_cost_cache_trace_example_counts_caches_and_traces(tmp_path: Path) -> None:
    out = run_example("cost_cache_trace.py")
    assert "requests sent: 2, cache hits: 3" in out
    assert "budget: 2 requests charged of 10 allowed" in out
    assert "traces recorded: 5" in out
    from maru.demo.cost_cache_trace import REPLIES, run_demo

    result = run_demo(tmp_path)
    assert result["answers"][:2] == result["answers"][2:] == REPLIES
    assert result["usage"].total_cost > 0 and result["usage"].cache_hits == 3
    assert [r.kind for r in result["last_trace"]] == ["chain", "prompt", "llm", "parser"]


def test_web_summary_offline_fetches_through_the_guard_and_cites_the_page() -> None:
    out = run_example("web_summary.py")
    assert "ScriptedChatModel (a scripted test double, not a real LLM)" in out
    assert "main royal palace of the Joseon dynasty" in out
    assert "(source: http://127.0.0.1:" in out
    assert "Home | Attractions" not in out  # navigation boilerplate was stripped
    assert "the guard refuses it: BlockedAddressError" in out
