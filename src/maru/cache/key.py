"""Cache keys: what makes two model requests "the same request".

The key covers the parameters that change the answer (model, temperature, tools, response format,
stop, max tokens, seed …) and the messages' content, roles, names and tool calls. It leaves out what
does not change the answer: message ids and metadata, usage, timeouts, headers, streaming options.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

# Request parameters that never change what the model answers.
IGNORED_PARAMS = frozenset(
    {
        "timeout",
        "extra_headers",
        "extra_query",
        "stream",
        "stream_options",
        "stream_usage",
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls_hint",
    }
)


def _message_identity(message: BaseMessage) -> list[Any]:
    item: list[Any] = [message.role, message.content]
    if message.name:
        item.append(["name", message.name])
    if isinstance(message, AIMessage) and message.tool_calls:
        item.append([[tc.name, tc.args] for tc in message.tool_calls])
    if isinstance(message, ToolMessage):
        item.append(["tool_call_id", message.tool_call_id])
    return item


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in IGNORED_PARAMS and v is not None}


def cache_key(params: Mapping[str, Any], messages: Sequence[BaseMessage]) -> str:
    """A hex digest identifying one request exactly."""
    return _digest(_canonical([normalise_params(params), [_message_identity(m) for m in messages]]))


def context_key(params: Mapping[str, Any], messages: Sequence[BaseMessage]) -> str:
    """A digest of everything except the last human message's text: two requests may share a
    semantic cache entry only when their parameters, system prompt, earlier turns *and later turns*
    are identical. Turns after the last human message (the model's tool calls and the tool results
    of an agent loop) are part of the context: without them the second request of a tool loop would
    look like the first one and be answered with the first tool call again."""
    last = _last_human_index(messages)
    identity = [_message_identity(m) for m in messages]
    if last is not None:
        identity[last][1] = None  # the question itself is compared by the semantic cache
    return _digest(_canonical([normalise_params(params), identity]))


def _last_human_index(messages: Sequence[BaseMessage]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i
    return None


def prompt_text(messages: Sequence[BaseMessage]) -> str:
    """The text a semantic cache compares: the last human message."""
    last = _last_human_index(messages)
    return messages[last].text if last is not None else ""
