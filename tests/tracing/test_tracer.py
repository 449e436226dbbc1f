"""The tracer: run trees from real chains, tokens and cost, errors, redaction, threads, async."""

import asyncio
import contextlib

import pytest

from maru import parallel, runnable
from maru.core import events
from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate
from maru.tracing import disable, enable, tracing
from maru.usage import register_price


class MemorySink:
    def __init__(self):
        self.traces = []
        self.closed = False

    def write(self, runs):
        self.traces.append(runs)

    def flush(self):
        pass

    def close(self):
        self.closed = True


def by_trace(sink):
    """The runs a sink received, grouped by trace (the tracer may write several traces at once)."""
    traces = {}
    for runs in sink.traces:
        for run in runs:
            traces.setdefault(run.trace_id, []).append(run)
    return list(traces.values())


@pytest.fixture(autouse=True)
def price():
    register_price("traced-model", input=1.0, output=4.0)


def chat_chain(replies=("Seoul.",)):
    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{q}")])
    model = ScriptedChatModel(
        replies=[AIMessage(r, usage=Usage(20, 5)) for r in replies], cycle=True, model="traced-model"
    )
    return prompt | model | StrOutputParser()


def test_a_chain_becomes_a_run_tree():
    sink = MemorySink()
    with tracing([sink]):
        chat_chain().invoke({"q": "capital of Korea?"}, {"tags": ["demo"], "metadata": {"user": "kim"}})
    assert sink.closed
    [runs] = sink.traces
    assert [(r.kind, r.name) for r in runs] == [
        ("prompt", "ChatPromptTemplate"),
        ("llm", "ScriptedChatModel"),
        ("parser", "StrOutputParser"),
        ("chain", "Sequence"),
    ]
    root = runs[-1]
    assert root.parent_id is None and root.trace_id == root.id
    assert all(r.parent_id == root.id and r.trace_id == root.id for r in runs[:-1])
    assert len({r.id for r in runs}) == 4
    assert all(r.tags == ["demo"] and r.metadata == {"user": "kim"} for r in runs)
    assert root.inputs == {"q": "capital of Korea?"} and root.outputs == "Seoul."
    assert all(r.start_time <= r.end_time for r in runs)
    assert root.start_time <= runs[0].start_time and runs[2].end_time <= root.end_time


def test_model_runs_carry_tokens_and_cost_and_the_root_sums_them():
    sink = MemorySink()
    with tracing([sink]):
        chain = chat_chain()
        parallel(a=chain, b=chain).invoke({"q": "x"})
    runs = sink.traces[0]
    llm = [r for r in runs if r.kind == "llm"]
    assert len(llm) == 2
    assert all(r.model == "traced-model" and r.input_tokens == 20 and r.output_tokens == 5 for r in llm)
    assert all(r.provider == "maru.scripted" for r in llm)  # a trace says no real model answered
    assert llm[0].cost == pytest.approx((20 * 1.0 + 5 * 4.0) / 1e6)
    root = runs[-1]
    assert root.input_tokens == 40 and root.output_tokens == 10
    assert root.cost == pytest.approx(2 * (20 * 1.0 + 5 * 4.0) / 1e6)


def test_errors_are_recorded_and_redacted():
    def leaky(x):
        raise ConnectionError("auth failed for key sk-abcdefghijklmnopqrstuvwxyz")

    sink = MemorySink()
    with tracing([sink]), pytest.raises(ConnectionError):
        (runnable(lambda x: x, name="prep") | runnable(leaky)).invoke("q")
    runs = sink.traces[0]
    failing = next(r for r in runs if r.name == "leaky")
    assert failing.error == "ConnectionError: auth failed for key sk-***"
    assert failing.outputs is None
    assert runs[-1].error is not None  # the chain failed too
    assert next(r for r in runs if r.name == "prep").error is None


def test_secrets_never_reach_a_sink():
    sink = MemorySink()
    step = runnable(lambda d: d, name="echo")
    with tracing([sink], redact_patterns=[r"internal-\d+"]):
        step.invoke(
            {"api_key": "plain-secret", "headers": {"Authorization": "Bearer abc.def.ghijklmnop"},
             "note": "call with Bearer zyxwvutsrqponm and ticket internal-42"},
            {"metadata": {"password": "hunter2", "team": "ml"}},
        )
    run = sink.traces[0][0]
    text = repr(run.to_dict())
    for secret in ("plain-secret", "abc.def", "zyxwvutsrqponm", "internal-42", "hunter2"):
        assert secret not in text
    assert run.inputs["api_key"] == "[REDACTED]"
    assert run.metadata == {"password": "[REDACTED]", "team": "ml"}


def test_runs_in_pool_threads_keep_their_parent():
    sink = MemorySink()
    slow = runnable(lambda x: x, io_bound=True, name="branch")
    with tracing([sink]):
        (runnable(lambda x: x, name="first") | parallel(a=slow, b=slow, c=slow)).invoke(1)
    runs = sink.traces[0]
    par = next(r for r in runs if r.name == "Parallel")
    branches = [r for r in runs if r.name == "branch"]
    assert len(branches) == 3 and all(r.parent_id == par.id for r in branches)


def test_async_and_streamed_calls_are_traced():
    sink = MemorySink()
    chain = chat_chain(["one two three"])

    async def main():
        await chain.ainvoke({"q": "a"})
        return [c async for c in chain.astream({"q": "b"})]

    with tracing([sink]):
        chunks = asyncio.run(main())
        list(chain.stream({"q": "c"}))
    assert "".join(chunks) == "one two three"
    traces = by_trace(sink)
    assert len(traces) == 3
    for runs in traces:
        assert [r.kind for r in runs] == ["prompt", "llm", "parser", "chain"]
        assert runs[1].output_tokens == 5  # streamed usage reached the run
        assert runs[-1].outputs == "one two three"


def test_nothing_is_recorded_outside_a_tracing_block(monkeypatch):
    sink = MemorySink()
    with tracing([sink]):
        pass
    traced = []

    def spy(*args, **kwargs):
        traced.append(args)
        raise AssertionError("traced while nobody traces")

    import sys

    monkeypatch.setattr(sys.modules["maru.core.runnable"], "traced_call", spy)
    monkeypatch.setattr(sys.modules["maru.core.compose"], "traced_call", spy)
    assert chat_chain().invoke({"q": "x"}) == "Seoul."
    assert traced == [] and sink.traces == [] and events.active_state() is None


def test_global_enable_and_disable():
    sink = MemorySink()
    tracer = enable([sink])
    try:
        runnable(lambda x: x + 1, name="inc").invoke(1)
        assert tracer.flush()
        assert [r.name for r in sink.traces[0]] == ["inc"]
    finally:
        disable()
    assert sink.closed
    runnable(lambda x: x + 1).invoke(1)
    assert len(sink.traces) == 1


def test_events_and_tracing_work_together():
    sink = MemorySink()
    chain = chat_chain()

    async def main():
        return [e.event async for e in chain.astream_events({"q": "x"})]

    with tracing([sink]):
        names = asyncio.run(main())
    assert "on_chat_model_stream" in names and names[-1] == "on_chain_end"
    assert [r.kind for r in sink.traces[0]] == ["prompt", "llm", "parser", "chain"]


def test_long_values_are_cut():
    sink = MemorySink()
    with tracing([sink], max_value_chars=100):
        runnable(lambda s: s.upper(), name="up").invoke("x" * 5000)
    run = sink.traces[0][0]
    assert run.inputs.startswith("x" * 100) and run.inputs.endswith("[5000 chars]")


def test_a_broken_sink_does_not_break_the_chain_or_other_sinks():
    class Broken(MemorySink):
        def write(self, runs):
            raise OSError("disk full")

    good = MemorySink()
    with tracing([Broken(), good]):
        assert runnable(lambda x: x * 2).invoke(4) == 8
    assert len(good.traces) == 1


def _tree(runs):
    """A trace as comparable rows (name, parent's name, input, output, error type), in start order;
    also checks the order sinks get: every run after its children, the root last."""
    position = {r.id: i for i, r in enumerate(runs)}
    assert all(position[r.parent_id] > position[r.id] for r in runs if r.parent_id is not None)
    assert runs[-1].parent_id is None
    names = {r.id: r.name for r in runs}
    ordered = sorted(runs, key=lambda r: (r.start_time, -r.end_time))
    return [(r.name, names.get(r.parent_id), r.inputs, r.outputs, (r.error or "").split(":")[0]) for r in ordered]


def _traced(chain, value, *, listen=False):
    sink = MemorySink()
    with tracing([sink]):
        if listen:  # an event listener sends the sequence down the general (observed) path
            with events.listen(lambda event: None):
                _call(chain, value)
        else:
            _call(chain, value)
    [runs] = by_trace(sink)
    return runs


def _call(chain, value):
    with contextlib.suppress(ZeroDivisionError):
        chain.invoke(value)


def test_a_failing_middle_step_ends_the_sequence_run_with_its_error():
    chain = runnable(lambda x: x + 1, name="inc") | runnable(lambda x: x / 0, name="div") | runnable(
        lambda x: x, name="never"
    )
    runs = _traced(chain, 1)
    assert _tree(runs) == [
        ("Sequence", None, 1, None, "ZeroDivisionError"),
        ("inc", "Sequence", 1, 2, ""),
        ("div", "Sequence", 2, None, "ZeroDivisionError"),
    ]
    inc, div, seq = runs
    assert seq.start_time <= inc.start_time <= inc.end_time <= div.start_time <= div.end_time <= seq.end_time


def test_runs_invoked_inside_a_step_are_parented_to_that_step():
    inner = runnable(lambda x: x * 10, name="times10") | runnable(lambda x: x + 5, name="plus5")

    def outer_step(x):
        return inner.invoke(x) + runnable(lambda y: y, name="alone").invoke(0)

    chain = runnable(lambda x: x, name="first") | runnable(outer_step) | runnable(lambda x: -x, name="neg")
    runs = _traced(chain, 2)
    assert _tree(runs) == [
        ("Sequence", None, 2, -25, ""),
        ("first", "Sequence", 2, 2, ""),
        ("outer_step", "Sequence", 2, 25, ""),
        ("Sequence", "outer_step", 2, 25, ""),
        ("times10", "Sequence", 2, 20, ""),
        ("plus5", "Sequence", 20, 25, ""),
        ("alone", "outer_step", 0, 0, ""),
        ("neg", "Sequence", 25, -25, ""),
    ]
    root = runs[-1]
    inner_seq = next(r for r in runs if r.name == "Sequence" and r.parent_id is not None)
    assert all(r.parent_id == inner_seq.id for r in runs if r.name in ("times10", "plus5"))
    assert all(r.trace_id == root.id for r in runs)


@pytest.mark.parametrize("fails", [False, True])
def test_the_lean_and_the_observed_path_record_the_same_tree(fails):
    from maru.core.compose import Sequence

    last = runnable(lambda x: 1 / 0 if fails else x, name="last")
    nested = Sequence(runnable(lambda x: x * 2, name="b"), last, name="inner")  # named: kept nested
    middle = runnable(lambda x: nested.invoke(x) + runnable(lambda y: y, name="c").invoke(1), name="calls")
    chain = runnable(lambda x: x + 1, name="a") | nested | middle
    lean, observed = _traced(chain, 3), _traced(chain, 3, listen=True)
    assert _tree(lean) == _tree(observed)
    assert len({r.id for r in lean}) == len(lean)
    assert len(lean) == (5 if fails else 10)


def test_run_name_names_the_sequence_run_only():
    chain = runnable(lambda x: x, name="a") | runnable(lambda x: x, name="b")
    sink = MemorySink()
    with tracing([sink]):
        chain.invoke(1, {"run_name": "my-chain", "tags": ["t"]})
    [runs] = by_trace(sink)
    assert [r.name for r in runs] == ["a", "b", "my-chain"]
    assert all(r.tags == ["t"] for r in runs)
