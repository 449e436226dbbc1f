"""Real chains traced into every sink at once: the store, JSONL and OpenTelemetry agree, and
``maru trace show`` prints the tree the tracer recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from maru import runnable
from maru.cli import app
from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate
from maru.tracing import tracing
from maru.tracing.jsonl import JSONLSink, read_jsonl
from maru.tracing.otel import OTelSink
from maru.tracing.store import RunStore


def test_one_chain_in_three_sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path / "traces.sqlite")
    jsonl = JSONLSink(tmp_path / "runs.jsonl")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    model = ScriptedChatModel([AIMessage("맑음", usage=Usage(11, 3)), ValueError("the model is down")])
    chain = (ChatPromptTemplate.from_messages([("human", "{q}")]) | model | StrOutputParser()).with_config(
        run_name="weather", tags=["e2e"]
    )
    with tracing([store, jsonl, OTelSink(provider)]):
        assert chain.invoke({"q": "서울 날씨?"}) == "맑음"
        with pytest.raises(ValueError, match="down"):
            chain.invoke({"q": "again"})

    roots = store.list_traces()
    assert [r.name for r in roots] == ["weather", "weather"]
    failed, ok = roots
    assert failed.error == "ValueError: the model is down" and ok.error is None
    assert store.count_traces(tag="e2e") == 2 and store.count_traces(errors_only=True) == 1
    runs = store.get_trace(ok.trace_id)
    assert [r.kind for r in runs] == ["chain", "prompt", "llm", "parser"]
    llm = runs[2]
    assert (llm.input_tokens, llm.output_tokens) == (11, 3)
    assert llm.parent_id == ok.id

    # The same runs in the JSONL file and as spans.
    stored = {r.id for t in roots for r in store.get_trace(t.trace_id)}
    assert {r.id for r in read_jsonl(tmp_path / "runs.jsonl")} == stored
    spans = exporter.get_finished_spans()
    assert {s.attributes["maru.run.id"] for s in spans} == stored
    chat = next(s for s in spans if s.attributes["maru.run.id"] == llm.id)
    assert chat.attributes["gen_ai.usage.input_tokens"] == 11
    assert chat.parent.span_id == next(s for s in spans if s.attributes["maru.run.id"] == ok.id).context.span_id

    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["trace", "show", failed.trace_id, "--db", str(store.path)])
    assert result.exit_code == 0, result.output
    assert "weather" in result.output and "✗ ValueError: the model is down" in result.output


@runnable
def _double(x: int) -> int:
    return x * 2


def test_enable_writes_to_the_store_that_maru_trace_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maru.tracing import disable, enable

    path = tmp_path / "default.sqlite"
    tracer = enable(path=path)
    try:
        assert _double.invoke(21) == 42
        assert tracer.flush()
    finally:
        disable()
    monkeypatch.setenv("MARU_TRACE_DB", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["trace", "ls"])
    assert result.exit_code == 0, result.output
    assert "_double" in result.output
