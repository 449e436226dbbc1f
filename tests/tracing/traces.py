"""Traces to store, export and show in the tracing tests: nested runs, a model call with tokens and
cost, optional errors. Runs come children first, the root last, as the tracer hands them over."""

from __future__ import annotations

from typing import Any

from maru.tracing.run import Run


def make_trace(
    trace_id: str,
    name: str = "qa-chain",
    *,
    start: float = 1_764_000_000.0,
    error: str | None = None,
    child_error: str | None = None,
    tags: tuple[str, ...] = (),
    child_tags: tuple[str, ...] = (),
    model: str = "gpt-4o-mini",
    metadata: dict | None = None,
) -> list[Run]:
    """``name`` (chain) → prompt, llm, ``format`` (chain) → ``parse`` (parser).

    ``error`` fails the root (and the llm under it); ``child_error`` fails only the parser, as a
    fallback would leave it: the trace itself succeeds."""
    t = start
    root_id = f"{trace_id}-1"
    llm_error = error
    runs = [
        Run(
            id=f"{trace_id}-2",
            trace_id=trace_id,
            parent_id=root_id,
            name="ChatPromptTemplate",
            kind="prompt",
            start_time=t + 0.001,
            end_time=t + 0.002,
            inputs={"question": "서울 날씨는?"},
            outputs=[{"type": "human", "content": "서울 날씨는?"}],
        ),
        Run(
            id=f"{trace_id}-3",
            trace_id=trace_id,
            parent_id=root_id,
            name="OpenAIChat",
            kind="llm",
            start_time=t + 0.002,
            end_time=t + 0.802,
            inputs=[{"type": "human", "content": "서울 날씨는?"}],
            outputs=None if llm_error else {"type": "ai", "content": "맑음, 21°C"},
            error=llm_error,
            model=model,
            provider="openai",
            input_tokens=120,
            output_tokens=30,
            cached_tokens=20,
            cost=0.000036,
            metadata={"provider": "openai", **(metadata or {})},
            tags=list(child_tags),
        ),
        Run(
            id=f"{trace_id}-5",
            trace_id=trace_id,
            parent_id=f"{trace_id}-4",
            name="parse",
            kind="parser",
            start_time=t + 0.803,
            end_time=t + 0.804,
            inputs="맑음, 21°C",
            outputs=None if child_error else "맑음, 21°C",
            error=child_error,
        ),
        Run(
            id=f"{trace_id}-4",
            trace_id=trace_id,
            parent_id=root_id,
            name="format",
            kind="chain",
            start_time=t + 0.802,
            end_time=t + 0.805,
            inputs="맑음, 21°C",
            outputs="맑음, 21°C",
        ),
        Run(
            id=root_id,
            trace_id=trace_id,
            parent_id=None,
            name=name,
            kind="chain",
            start_time=t,
            end_time=t + 0.81,
            inputs={"question": "서울 날씨는?"},
            outputs=None if error else "맑음, 21°C",
            error=error,
            tags=list(tags),
            metadata=dict(metadata or {}),
            input_tokens=120,
            output_tokens=30,
            cached_tokens=20,
            cost=0.000036,
        ),
    ]
    if error:  # a failed model call never reaches the formatting step
        runs = [r for r in runs if r.name not in ("format", "parse")]
    return runs


def freeze_now(monkeypatch: Any, now: float) -> None:
    """Make relative filters ("1h", "5m") count back from ``now``: the fixtures place traces
    relative to a time taken at import, and a long test session must not move them across a
    filter's edge."""
    from datetime import datetime

    import maru.tracing.store as store_module

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return datetime.fromtimestamp(now, tz)

    monkeypatch.setattr(store_module, "datetime", Frozen)


class RunsSink:
    """A sink that keeps every run it is given, in order (``runs``)."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def write(self, runs: list[Run]) -> None:
        self.runs.extend(runs)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
