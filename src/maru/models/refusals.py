"""Endpoints that refuse a request feature, and the per-process memory of which did.

OpenAI-compatible servers differ in what they accept: llama.cpp's server answers a ``json_schema``
response format and ``tool_choice="required"`` with HTTP 500, others reject ``tools`` outright. A
step that can do without a feature tries it first and, when the server refuses the request *because
of* it, falls back and remembers the endpoint, so each refusal costs one request per process.
Structured output (:mod:`.adaptive`) and ``OpenAIChat``'s ``tool_choice="required"`` share this.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ..messages import BaseMessage, SystemMessage

__all__ = ["FallbackMemory", "endpoint_key", "names_any", "with_system_note"]


def endpoint_key(model: Any) -> str:
    """What identifies an endpoint's capabilities: the provider class, its base URL and model."""
    base_url = getattr(model, "base_url", None) or ""
    return f"{type(model).__name__}|{base_url}|{getattr(model, 'model_name', '')}"


def names_any(exc: BaseException, words: Sequence[str]) -> bool:
    """Whether the error, or the one it was raised from, names one of ``words`` (lower case): a
    server that refuses a parameter says which, while an outage or a bad key does not."""
    text = f"{exc} {exc.__cause__ or ''}".lower()
    return any(word in text for word in words)


class FallbackMemory:
    """How far down its list of alternatives each endpoint has pushed a step (0: the first one).
    Only ever moves down: a refusal is a property of the server, not of one request."""

    def __init__(self) -> None:
        self._start: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, endpoint: str) -> int:
        """The index of the first alternative worth trying on ``endpoint``."""
        return self._start.get(endpoint, 0)

    def remember(self, endpoint: str, index: int) -> None:
        with self._lock:
            self._start[endpoint] = max(index, self._start.get(endpoint, 0))

    def forget(self) -> None:
        """Start over for every endpoint (a restarted server may have gained the feature)."""
        with self._lock:
            self._start.clear()


def with_system_note(messages: list[BaseMessage], note: str) -> list[BaseMessage]:
    """``messages`` with ``note`` added to the system message (one is put first when there is none):
    a fallback that asks in words for what the endpoint would not enforce."""
    if messages and isinstance(messages[0], SystemMessage):
        return [SystemMessage(f"{messages[0].text}\n\n{note}"), *messages[1:]]
    return [SystemMessage(note), *messages]
