"""A run: one step's execution, as stored, shown and exported.

The hot path records raw tuples (see ``maru.core.events``); the tracer turns a finished trace's
tuples into ``Run`` objects on its background thread, making values JSON-safe and redacting secrets
there, never on the caller's thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("chain", "llm", "tool", "retriever", "embedding", "parser", "prompt")
"""Run kinds. A chat model's runs are ``llm``."""


@dataclass(slots=True)
class Run:
    """One step's execution. Times are epoch seconds; ``inputs`` / ``outputs`` are JSON-safe and
    redacted; ``error`` is ``"ExceptionType: message"`` and ``stacktrace`` the formatted traceback
    (with the exception's causes), both redacted. ``model``, ``provider`` (``openai`` …),
    ``input_tokens`` … and ``cost`` are set on model runs (``llm``); tokens and cost also, summed
    over the whole tree, on a trace's root run."""

    id: str
    trace_id: str
    parent_id: str | None
    name: str
    kind: str
    start_time: float
    end_time: float
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cost: float | None = None
    stacktrace: str | None = None

    @property
    def latency(self) -> float:
        return self.end_time - self.start_time

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
