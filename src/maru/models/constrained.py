"""Tool calls and JSON answers for models that only produce text, by constrained decoding.

A model run in process (llama.cpp) has no tool-calling API: it writes text. To make even a 135M
model return parseable objects, the request is turned into a JSON schema that the decoder is held
to (a grammar), plus a short system note that tells the model what the JSON means:

- tools offered: the reply is ``{"name": <tool>, "arguments": {...}}``; with ``tool_choice="auto"``
  it may instead be ``{"answer": "..."}``; a named ``tool_choice`` admits only that tool;
- ``response_format`` asking for JSON (``json_schema`` or ``json_object`` with or without a schema):
  the reply is that JSON.

:func:`plan_reply` builds the plan from a request's parameters; :meth:`ReplyPlan.read` turns the
model's text back into message content and tool calls. Nothing here imports llama.cpp, so the
logic is tested without a model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ToolCallError
from ..messages import ToolCall
from .tools_schema import tool_name

__all__ = ["ReplyPlan", "plan_reply"]

_ANSWER_KEY = "answer"
_ANY_JSON_OBJECT: dict[str, Any] = {"type": "object"}
_call_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """How one request is decoded: the schema the reply must match (``None``: free text), the
    note added to the system prompt, and whether the reply carries tool calls."""

    schema: dict[str, Any] | None = None
    note: str | None = None
    tools: bool = False

    @property
    def free_text(self) -> bool:
        return self.schema is None

    def read(self, text: str) -> tuple[str, list[ToolCall]]:
        """The message content and tool calls that ``text`` (the model's reply) stands for."""
        if not self.tools:
            return text, []
        try:
            reply = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolCallError(
                f"the model's tool-call reply is not JSON ({exc.msg}); it was cut off or the "
                f"grammar was not applied: {text[:200]!r}"
            ) from exc
        if isinstance(reply, Mapping) and "name" in reply:
            arguments = reply.get("arguments")
            call = ToolCall(
                name=str(reply["name"]),
                args=dict(arguments) if isinstance(arguments, Mapping) else {},
                id=f"call_{next(_call_ids)}",
            )
            return "", [call]
        if isinstance(reply, Mapping) and _ANSWER_KEY in reply:
            return str(reply[_ANSWER_KEY]), []
        raise ToolCallError(f"the model's reply is neither a tool call nor an answer: {text[:200]!r}")


def plan_reply(params: Mapping[str, Any]) -> ReplyPlan:
    """The decoding plan for a request's parameters (``tools``, ``tool_choice``,
    ``response_format``)."""
    tools: Sequence[Mapping[str, Any]] = params.get("tools") or ()
    choice = params.get("tool_choice")
    if tools and choice != "none":
        return _tool_plan(tools, choice)
    return _format_plan(params.get("response_format"))


# --------------------------------------------------------------------------- tools
def _tool_plan(tools: Sequence[Mapping[str, Any]], choice: Any) -> ReplyPlan:
    forced = _forced_name(choice)
    offered = [t for t in tools if forced is None or tool_name(t) == forced]
    options = [_call_schema(t) for t in offered]
    may_answer = forced is None and choice != "required"
    if may_answer:
        options.append(_answer_schema())
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return ReplyPlan(schema=schema, note=_tool_note(offered, may_answer), tools=True)


def _forced_name(choice: Any) -> str | None:
    if isinstance(choice, Mapping):
        function = choice.get("function") or {}
        return function.get("name")
    return None


def _call_schema(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    return {
        "type": "object",
        "properties": {
            "name": {"const": function["name"]},
            "arguments": function.get("parameters") or _ANY_JSON_OBJECT,
        },
        "required": ["name", "arguments"],
    }


def _answer_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {_ANSWER_KEY: {"type": "string"}},
        "required": [_ANSWER_KEY],
    }


def _tool_note(tools: Sequence[Mapping[str, Any]], may_answer: bool) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        function = tool["function"]
        parameters = json.dumps(function.get("parameters") or {}, ensure_ascii=False)
        description = function.get("description", "")
        lines.append(f"- {function['name']}: {description} Arguments (JSON schema): {parameters}")
    lines.append('To call a tool, reply with JSON: {"name": <tool name>, "arguments": {...}}.')
    if may_answer:
        lines.append(
            'When a tool result already answers the question, or no tool fits, reply with JSON: '
            '{"answer": <your answer>}.'
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- JSON answers
def _format_plan(response_format: Any) -> ReplyPlan:
    if not isinstance(response_format, Mapping):
        return ReplyPlan()
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or _ANY_JSON_OBJECT
        return ReplyPlan(schema=dict(schema), note=_json_note(schema))
    if kind == "json_object":
        schema = response_format.get("schema") or _ANY_JSON_OBJECT
        return ReplyPlan(schema=dict(schema), note=_json_note(schema))
    return ReplyPlan()


def _json_note(schema: Mapping[str, Any]) -> str:
    return (
        "Reply with one JSON object that matches this JSON schema: "
        + json.dumps(schema, ensure_ascii=False)
    )
