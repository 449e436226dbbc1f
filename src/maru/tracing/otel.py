"""``OTelSink``: each run as an OpenTelemetry span, so any OTel backend (Jaeger, Tempo, Honeycomb,
Langfuse, Phoenix … through OTLP) shows maru traces.

Spans follow the OpenTelemetry GenAI semantic conventions (checked against the current registry in
``open-telemetry/semantic-conventions-genai``):

- a model run (``llm``) is an inference span: name ``"chat {model}"``, kind ``CLIENT``,
  ``gen_ai.operation.name = "chat"``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens`` / ``cache_read.input_tokens``, and ``gen_ai.provider.name`` (with the older
  ``gen_ai.system`` for backends on conventions ≤ 1.36): the run's metadata may name one
  (``provider``, ``gen_ai.provider.name`` or ``ls_provider``: say ``vllm`` for a local server),
  else the model's own ``provider``;
- an ``embedding`` run is ``"embeddings {model}"`` with ``gen_ai.operation.name = "embeddings"``;
  a ``tool`` run has ``gen_ai.operation.name = "execute_tool"`` and ``gen_ai.tool.name``; a
  ``retriever`` run has ``gen_ai.operation.name = "retrieval"``; other runs (chains, prompts,
  parsers) are ``INTERNAL`` spans named after the run, without ``gen_ai.*`` attributes;
- maru's own: ``maru.run.kind``, ``maru.run.id``, ``maru.run.name``, ``maru.trace.id``,
  ``maru.cost_usd``, ``maru.tags`` (string array), ``maru.metadata.<key>`` (scalars as they are,
  anything else as JSON). A trace root's summed tokens go in ``maru.usage.input_tokens`` /
  ``output_tokens``, not ``gen_ai.usage.*``, so a backend adding up ``gen_ai.usage`` over spans
  does not count them twice;
- a failed run: status ``ERROR`` with the message, ``error.type``, and an ``exception`` event
  (with ``exception.stacktrace``, redacted).

Inputs and outputs are prompts and completions; the conventions make recording them opt-in, and so
does this sink (``capture_content=True`` adds ``maru.inputs`` / ``maru.outputs`` as JSON, cut at
``max_content_chars``).

Spans keep the runs' own start and end times; they are created after the trace finished, on the
tracer's thread, so OTel assigns new span and trace ids and the maru ids travel as attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .run import Run

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["OTelSink", "span_attributes", "span_name"]

_PROVIDER_KEYS = ("gen_ai.provider.name", "provider", "ls_provider")
_OPERATIONS = {"llm": "chat", "embedding": "embeddings", "tool": "execute_tool", "retriever": "retrieval"}
_MODEL_KINDS = ("llm", "embedding")


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def span_name(run: Run) -> str:
    """``"{operation} {model}"`` for model runs (the GenAI convention), else the run's name."""
    if run.kind in _MODEL_KINDS:
        operation = _OPERATIONS[run.kind]
        return f"{operation} {run.model}" if run.model else operation
    return run.name


def _attribute_value(value: Any) -> Any:
    """An OTel attribute value: str/bool/int/float, a list of one of those, else JSON text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _provider(metadata: Mapping[str, Any]) -> str | None:
    for key in _PROVIDER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def span_attributes(run: Run, *, capture_content: bool = False, max_content_chars: int = 8192) -> dict[str, Any]:
    """The attributes of ``run``'s span (see the module docstring)."""
    attrs: dict[str, Any] = {
        "maru.run.kind": run.kind,
        "maru.run.id": run.id,
        "maru.run.name": run.name,
        "maru.trace.id": run.trace_id,
    }
    if run.parent_id is not None:
        attrs["maru.parent.id"] = run.parent_id
    _add_gen_ai(attrs, run)
    _add_usage(attrs, run, "gen_ai.usage" if run.kind in _MODEL_KINDS else "maru.usage")
    if run.tags:
        attrs["maru.tags"] = [str(t) for t in run.tags]
    for key, value in (run.metadata or {}).items():
        if value is not None:
            attrs[f"maru.metadata.{key}"] = _attribute_value(value)
    if run.error:
        attrs["error.type"] = _error_type(run.error)
    if capture_content:
        _add_content(attrs, run, max_content_chars)
    return attrs


def _add_gen_ai(attrs: dict[str, Any], run: Run) -> None:
    """The GenAI semantic conventions: operation, model and provider, tool name."""
    operation = _OPERATIONS.get(run.kind)
    if operation is not None:
        attrs["gen_ai.operation.name"] = operation
    if run.kind in _MODEL_KINDS:
        if run.model:
            attrs["gen_ai.request.model"] = run.model
        provider = _provider(run.metadata) or run.provider
        if provider:
            attrs["gen_ai.provider.name"] = provider
            attrs["gen_ai.system"] = provider  # conventions ≤ 1.36
    if run.kind == "tool":
        attrs["gen_ai.tool.name"] = run.name


def _add_usage(attrs: dict[str, Any], run: Run, prefix: str) -> None:
    """Tokens under ``prefix`` (GenAI's for model runs, maru's for their parents) and the cost."""
    if run.input_tokens is not None:
        attrs[f"{prefix}.input_tokens"] = run.input_tokens
    if run.output_tokens is not None:
        attrs[f"{prefix}.output_tokens"] = run.output_tokens
    if run.cached_tokens:
        attrs[f"{prefix}.cache_read.input_tokens"] = run.cached_tokens
    if run.cost is not None:
        attrs["maru.cost_usd"] = float(run.cost)


def _add_content(attrs: dict[str, Any], run: Run, max_chars: int) -> None:
    """Inputs and outputs as JSON text, cut at ``max_chars`` (opt-in: they may hold user data)."""
    for key, value in (("maru.inputs", run.inputs), ("maru.outputs", run.outputs)):
        if value is not None:
            text = json.dumps(value, ensure_ascii=False, default=str)
            if len(text) > max_chars:
                text = text[:max_chars] + f"… [{len(text)} chars]"
            attrs[key] = text


def _error_type(error: str) -> str:
    head, sep, _ = error.partition(":")
    return head.strip() if sep and head.strip() and " " not in head.strip() else "_OTHER"


def _error_message(error: str) -> str:
    head, sep, rest = error.partition(":")
    return rest.strip() if sep and " " not in head.strip() else error


class OTelSink:
    """Export each trace through an OpenTelemetry ``TracerProvider`` (``None``: the global one, as
    set with ``opentelemetry.trace.set_tracer_provider``). Needs ``pip install "maru[trace]"``.

    ``flush`` calls the provider's ``force_flush``; ``close`` flushes but does not shut the
    provider down (it belongs to the application), unless ``shutdown_on_close=True``.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool = False,
        max_content_chars: int = 8192,
        shutdown_on_close: bool = False,
    ) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                'OTelSink needs the OpenTelemetry SDK: pip install "maru[trace]"'
            ) from exc
        from .._version import __version__

        self._provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer: Tracer = self._provider.get_tracer("maru", __version__)
        self.capture_content = capture_content
        self.max_content_chars = max_content_chars
        self.shutdown_on_close = shutdown_on_close

    def write(self, runs: list[Run]) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace import SpanKind, Status, StatusCode

        known = {run.id for run in runs}
        children: dict[str | None, list[Run]] = {}
        for run in runs:
            parent = run.parent_id if run.parent_id in known else None  # orphans become roots
            children.setdefault(parent, []).append(run)
        for siblings in children.values():
            siblings.sort(key=lambda r: r.start_time)

        # Parents first (a child needs its parent's context), then end them children first.
        opened: list[tuple[Span, Run]] = []
        stack: list[tuple[Run, Context]] = [(run, Context()) for run in reversed(children.get(None, []))]
        while stack:
            run, parent_context = stack.pop()
            span = self._tracer.start_span(
                span_name(run),
                context=parent_context,
                kind=SpanKind.CLIENT if run.kind in _MODEL_KINDS else SpanKind.INTERNAL,
                attributes=span_attributes(
                    run, capture_content=self.capture_content, max_content_chars=self.max_content_chars
                ),
                start_time=_ns(run.start_time),
            )
            if run.error:
                span.set_status(Status(StatusCode.ERROR, run.error))
                exception = {"exception.type": _error_type(run.error), "exception.message": _error_message(run.error)}
                if run.stacktrace:
                    exception["exception.stacktrace"] = run.stacktrace
                span.add_event("exception", exception, timestamp=_ns(run.end_time))
            opened.append((span, run))
            context = trace.set_span_in_context(span, Context())
            for child in reversed(children.get(run.id, [])):
                stack.append((child, context))
        for span, run in reversed(opened):
            span.end(end_time=_ns(max(run.end_time, run.start_time)))

    def flush(self) -> None:
        force_flush = getattr(self._provider, "force_flush", None)
        if callable(force_flush):
            force_flush()

    def close(self) -> None:
        self.flush()
        if self.shutdown_on_close:
            shutdown = getattr(self._provider, "shutdown", None)
            if callable(shutdown):
                shutdown()
