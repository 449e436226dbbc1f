"""OTelSink through the OpenTelemetry SDK's in-memory exporter: span tree, GenAI attributes, times,
errors."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from maru.tracing.otel import OTelSink
from maru.tracing.run import Run
from maru.tracing.sinks import RunSink

from .traces import make_trace

T0 = 1_764_000_000.25


@pytest.fixture
def exported() -> tuple[OTelSink, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OTelSink(provider), exporter


def by_name(exporter: InMemorySpanExporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_spans_form_the_run_tree(exported) -> None:
    sink, exporter = exported
    assert isinstance(sink, RunSink)
    sink.write(make_trace("t1", "qa-chain", start=T0))
    spans = by_name(exporter)
    assert set(spans) == {"qa-chain", "ChatPromptTemplate", "chat gpt-4o-mini", "format", "parse"}
    root = spans["qa-chain"]
    assert root.parent is None
    trace_id = root.context.trace_id
    assert all(s.context.trace_id == trace_id for s in spans.values())
    parent_of = {name: s.parent.span_id if s.parent else None for name, s in spans.items()}
    assert parent_of["ChatPromptTemplate"] == root.context.span_id
    assert parent_of["chat gpt-4o-mini"] == root.context.span_id
    assert parent_of["format"] == root.context.span_id
    assert parent_of["parse"] == spans["format"].context.span_id
    # Exported children first, as spans end.
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.index("parse") < names.index("format") < names.index("qa-chain")
    assert names[-1] == "qa-chain"


def test_each_trace_is_its_own_otel_trace(exported) -> None:
    sink, exporter = exported
    sink.write(make_trace("t1", "one", start=T0))
    sink.write(make_trace("t2", "two", start=T0 + 5))
    roots = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert len(roots) == 2
    assert roots[0].context.trace_id != roots[1].context.trace_id


def test_times_are_the_runs_own_in_nanoseconds(exported) -> None:
    sink, exporter = exported
    sink.write(make_trace("t1", start=T0))
    llm = by_name(exporter)["chat gpt-4o-mini"]
    assert llm.start_time == round((T0 + 0.002) * 1e9)
    assert llm.end_time == round((T0 + 0.802) * 1e9)
    root = by_name(exporter)["qa-chain"]
    assert root.start_time == round(T0 * 1e9)
    assert root.end_time - root.start_time == pytest.approx(0.81e9, abs=1000)


def test_model_runs_carry_gen_ai_attributes(exported) -> None:
    sink, exporter = exported
    sink.write(make_trace("t1", start=T0, metadata={"user": "u-7"}))
    llm = by_name(exporter)["chat gpt-4o-mini"]
    assert llm.kind == SpanKind.CLIENT
    attrs = dict(llm.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 120
    assert attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attrs["maru.cost_usd"] == pytest.approx(0.000036)
    assert attrs["maru.run.kind"] == "llm"
    assert attrs["maru.run.id"] == "t1-3"
    assert attrs["maru.trace.id"] == "t1"
    assert attrs["maru.parent.id"] == "t1-1"
    assert attrs["maru.metadata.provider"] == "openai"
    assert attrs["maru.metadata.user"] == "u-7"
    assert llm.status.status_code == StatusCode.UNSET


def test_other_runs_are_internal_without_gen_ai_usage(exported) -> None:
    sink, exporter = exported
    sink.write(make_trace("t1", start=T0, tags=("prod", "v2"), metadata={"n": 3, "ok": True, "cfg": {"a": 1}}))
    root = by_name(exporter)["qa-chain"]
    assert root.kind == SpanKind.INTERNAL
    attrs = dict(root.attributes)
    assert "gen_ai.operation.name" not in attrs
    # The root's summed tokens must not be counted twice by backends adding up gen_ai.usage.
    assert not any(key.startswith("gen_ai.usage") for key in attrs)
    assert attrs["maru.usage.input_tokens"] == 120
    assert attrs["maru.usage.output_tokens"] == 30
    assert attrs["maru.cost_usd"] == pytest.approx(0.000036)
    assert list(attrs["maru.tags"]) == ["prod", "v2"]
    assert attrs["maru.metadata.n"] == 3
    assert attrs["maru.metadata.ok"] is True
    assert attrs["maru.metadata.cfg"] == '{"a": 1}'
    assert attrs["maru.run.name"] == "qa-chain"
    assert "maru.parent.id" not in attrs
    # Content is opt-in.
    assert "maru.inputs" not in attrs and "maru.outputs" not in attrs


def test_tool_embedding_and_retriever_runs(exported) -> None:
    sink, exporter = exported
    runs = [
        Run("e", "r", "r", "embed", "embedding", T0, T0 + 0.1, model="all-MiniLM-L6-v2", input_tokens=8),
        Run("q", "r", "r", "vector search", "retriever", T0 + 0.1, T0 + 0.2),
        Run("w", "r", "r", "web_search", "tool", T0 + 0.2, T0 + 0.3),
        Run("r", "r", None, "agent", "chain", T0, T0 + 0.4),
    ]
    sink.write(runs)
    spans = by_name(exporter)
    assert set(spans) == {"embeddings all-MiniLM-L6-v2", "vector search", "web_search", "agent"}
    embed = spans["embeddings all-MiniLM-L6-v2"]
    assert embed.attributes["gen_ai.operation.name"] == "embeddings"
    assert embed.attributes["gen_ai.usage.input_tokens"] == 8
    assert spans["vector search"].attributes["gen_ai.operation.name"] == "retrieval"
    tool = spans["web_search"]
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "web_search"
    assert tool.kind == SpanKind.INTERNAL


def test_errors_set_status_error_type_and_an_exception_event(exported) -> None:
    sink, exporter = exported
    sink.write(make_trace("t1", start=T0, error="TimeoutError: model took too long"))
    spans = by_name(exporter)
    for name in ("qa-chain", "chat gpt-4o-mini"):
        span = spans[name]
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == "TimeoutError: model took too long"
        assert span.attributes["error.type"] == "TimeoutError"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "TimeoutError"
        assert event.attributes["exception.message"] == "model took too long"
        assert event.timestamp == span.end_time
    assert spans["ChatPromptTemplate"].status.status_code == StatusCode.UNSET


def test_an_error_without_a_type_prefix(exported) -> None:
    sink, exporter = exported
    sink.write([Run("r", "r", None, "step", "chain", T0, T0 + 1, error="it broke, badly")])
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "_OTHER"
    assert span.events[0].attributes["exception.message"] == "it broke, badly"


def test_content_capture_is_opt_in_and_capped(exported) -> None:
    _, exporter = exported
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = OTelSink(provider, capture_content=True, max_content_chars=20)
    sink.write([Run("r", "r", None, "step", "chain", T0, T0 + 1, inputs={"q": "x" * 100}, outputs="short")])
    (span,) = exporter.get_finished_spans()
    assert span.attributes["maru.inputs"].startswith('{"q": "xxxxxxxxxxxxx')
    assert span.attributes["maru.inputs"].endswith("chars]")
    assert span.attributes["maru.outputs"] == '"short"'


def test_an_orphan_run_becomes_a_root(exported) -> None:
    sink, exporter = exported
    sink.write([Run("c", "t", "missing-parent", "child", "chain", T0, T0 + 1)])
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_flush_and_close_leave_the_provider_running(exported) -> None:
    sink, exporter = exported
    sink.flush()
    sink.close()
    sink.write(make_trace("t1", start=T0))  # the provider belongs to the application
    assert len(exporter.get_finished_spans()) == 5


def test_the_global_provider_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    sink = OTelSink()
    sink.write(make_trace("t1", start=T0))
    assert len(exporter.get_finished_spans()) == 5
    scope = exporter.get_finished_spans()[0].instrumentation_scope
    assert scope.name == "maru"


def test_the_provider_comes_from_the_run_unless_metadata_names_one(exported) -> None:
    sink, exporter = exported
    runs = make_trace("t1", start=T0)
    llm = next(r for r in runs if r.kind == "llm")
    llm.metadata = {}
    llm.provider = "gcp.gemini"
    sink.write(runs)
    assert dict(by_name(exporter)["chat gpt-4o-mini"].attributes)["gen_ai.provider.name"] == "gcp.gemini"
    exporter.clear()
    llm.metadata = {"provider": "vllm"}  # the user knows better than the client class
    sink.write(runs)
    assert dict(by_name(exporter)["chat gpt-4o-mini"].attributes)["gen_ai.provider.name"] == "vllm"
