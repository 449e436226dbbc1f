"""A trace shows what a step was given when it was called, even when the caller changes the list or
dict afterwards (values are converted later, on the tracer's thread); a failed run keeps its stack."""

from __future__ import annotations

import asyncio
import contextlib

from maru import runnable
from maru.agents import ToolCallingAgent, tool
from maru.core import events
from maru.messages import AIMessage, HumanMessage, ToolCall
from maru.models import ScriptedChatModel
from maru.tracing import Tracer, tracing

from .traces import RunsSink


@runnable
def count(items: list) -> int:
    return len(items)


@runnable
def keys(data: dict) -> list:
    return sorted(data)


def test_a_list_changed_after_the_call_is_recorded_as_it_was_sent() -> None:
    sink = RunsSink()
    with tracing([sink]):
        messages = ["a", "b"]
        count.invoke(messages)
        messages.append("c")
    [run] = sink.runs
    assert run.inputs == ["a", "b"] and run.outputs == 2


def test_a_dict_and_the_lists_inside_it_are_recorded_as_they_were_sent() -> None:
    sink = RunsSink()
    with tracing([sink]):
        data = {"history": ["hi"], "q": "x"}
        keys.invoke(data)
        data["history"].append("later")
        data["extra"] = 1
    [run] = sink.runs
    assert run.inputs == {"history": ["hi"], "q": "x"}


def test_the_process_wide_tracer_records_call_time_inputs_too() -> None:
    sink = RunsSink()
    tracer = Tracer([sink], batch_interval=3600)  # converts only when flushed: after the change
    events.set_global_collector(tracer)
    try:
        messages = ["a"]
        (count | runnable(lambda n: n + 1)).invoke(messages)
        messages.append("b")
        more = ["x"]
        count.invoke(more)
        more.clear()
    finally:
        events.set_global_collector(None)
        tracer.close()
    inputs = {run.name: run.inputs for run in sink.runs if run.name in ("count", "Sequence")}
    assert inputs == {"count": ["x"], "Sequence": ["a"]}
    step = next(r for r in sink.runs if r.name == "count" and r.parent_id is not None)
    assert step.inputs == ["a"]


def test_listeners_and_async_calls_see_call_time_inputs() -> None:
    sink = RunsSink()
    seen = []
    with tracing([sink]), events.listen(seen.append):
        messages = ["a"]
        count.invoke(messages)
        messages.append("b")
        late = ["x"]
        asyncio.run(count.ainvoke(late))
        late.append("y")
    assert [run.inputs for run in sink.runs] == [["a"], ["x"]]


@tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


def test_each_agent_model_run_shows_the_messages_it_was_sent_not_its_own_reply() -> None:
    model = ScriptedChatModel([
        AIMessage("", tool_calls=[ToolCall(name="weather", args={"city": "Seoul"}, id="c0")]),
        "It is sunny.",
    ])
    sink = RunsSink()
    with tracing([sink]):
        ToolCallingAgent(model, [weather]).invoke([HumanMessage("Weather in Seoul?")])
    llm = [run for run in sink.runs if run.kind == "llm"]
    assert [len(run.inputs) for run in llm] == [1, 3]  # the question; then + the call and its result
    assert [m["role"] for m in llm[1].inputs] == ["user", "assistant", "tool"]
    assert all(m.get("content") != "It is sunny." for run in llm for m in run.inputs)


def _fail_deep(key: str) -> None:
    raise RuntimeError(f"provider said no to api_key={key}")


@runnable
def failing(key: str) -> str:
    _fail_deep(key)
    return key


def test_a_failed_run_keeps_its_stack_trace_redacted() -> None:
    sink = RunsSink()
    secret = "sk-proj-" + "Ab3" * 12
    with tracing([sink]), contextlib.suppress(RuntimeError):
        failing.invoke(secret)
    [run] = sink.runs
    assert run.error.startswith("RuntimeError: provider said no")
    assert run.stacktrace is not None
    assert "Traceback (most recent call last)" in run.stacktrace
    assert "_fail_deep" in run.stacktrace and "test_call_time_inputs.py" in run.stacktrace
    assert secret not in run.stacktrace and secret not in run.error and secret not in str(run.inputs)


def _fail_with_context(n: int) -> None:
    """Fails ``n`` times, each failure raised while handling the last: a long chained traceback."""
    try:
        if n:
            _fail_with_context(n - 1)
    except ValueError as exc:
        raise ValueError(f"level {n}, token=" + "t0k" * 10) from exc
    raise ValueError(f"at the bottom, token={'t0k' * 10}")


def test_a_long_stack_trace_keeps_its_end() -> None:
    sink = RunsSink()
    with tracing([sink], max_value_chars=2_000), contextlib.suppress(ValueError):
        runnable(lambda _: _fail_with_context(60), name="deep").invoke(1)
    [run] = sink.runs
    assert len(run.stacktrace) < 2_100
    assert run.stacktrace.startswith("[… ") and run.stacktrace.rstrip().endswith("ValueError: level 60, token=***")
