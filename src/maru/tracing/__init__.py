"""Tracing: every step as a run in a tree, stored locally, viewable, exportable to OpenTelemetry.

``maru.tracing.enable()`` (or ``MARU_TRACING=1``) traces every call into the SQLite run store that
``maru trace ls / show / ui`` read; ``tracing(sinks)`` traces one block. Sinks and the viewer load on
first use.
"""

from typing import Any

from ..redact import Redactor
from .run import Run
from .tracer import Tracer, disable, enable, enable_from_env, to_jsonable, tracing

_LAZY = {
    "RunStore": ".store",
    "JSONLSink": ".jsonl",
    "read_jsonl": ".jsonl",
    "OTelSink": ".otel",
    "RunSink": ".sinks",
    "create_viewer_app": ".viewer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'maru.tracing' has no attribute {name!r}")


__all__ = [
    "JSONLSink",
    "OTelSink",
    "Redactor",
    "Run",
    "RunSink",
    "RunStore",
    "Tracer",
    "create_viewer_app",
    "disable",
    "enable",
    "enable_from_env",
    "read_jsonl",
    "to_jsonable",
    "tracing",
]
