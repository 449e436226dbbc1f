"""Structured output that adapts to what the endpoint supports (``method="auto"``, the default).

Servers differ: OpenAI takes a ``json_schema`` response format, llama.cpp's Python server answers
it with HTTP 500 and takes only ``json_object`` with a ``schema``, some servers do tool calls only,
and some do none of these. ``auto`` tries the methods in this order — ``json_schema``,
``json_object`` with the schema, a forced tool call, the schema in the prompt — moving on only when
the server refuses the request *because of* the method (its error names the parameter), and
remembers per endpoint what worked, so the refusal costs one request per process.

A reply that does not parse or validate gets one repair round: the model sees its reply and the
error and answers again. A second failure raises :class:`~maru.errors.OutputParserError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import OutputParserError
from ..messages import AIMessage, BaseMessage, HumanMessage, to_messages
from .refusals import FallbackMemory, endpoint_key, names_any, with_system_note
from .structured import StructuredOutputParser, json_schema_format
from .tools_schema import to_openai_tool, tool_name

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .base import ChatModel

__all__ = ["AdaptiveStructuredOutput", "METHODS"]


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    refusal_words: tuple[str, ...]
    """Words in a server error that mean "I don't support this method"."""
    parse_as: str  # "json_schema" (read the text) or "tool" (read the tool call)


METHODS: tuple[_Method, ...] = (
    _Method("json_schema", ("response_format", "json_schema", "response format"), "json_schema"),
    _Method("json_object", ("response_format", "json_object", "response format"), "json_schema"),
    _Method("tool", ("tool_choice", "tools", "function call"), "tool"),
    _Method("prompt", (), "json_schema"),
)

_working = FallbackMemory()
"""Endpoint → index in METHODS of the first method that it did not refuse."""

_REPAIR = (
    "Your reply could not be used: {error}\n"
    "Reply again with only the JSON object that matches the schema, nothing else."
)


class AdaptiveStructuredOutput(Runnable[Any, Any]):
    """``model.with_structured_output(schema)`` with ``method="auto"``: a validated ``schema``
    instance from whatever structured-output method the endpoint supports."""

    kind: ClassVar[str] = "chain"
    io_bound = True

    def __init__(self, model: ChatModel, schema: type[BaseModel], strict: bool | None = None) -> None:
        self.model, self.schema, self.strict = model, schema, strict
        self.endpoint = endpoint_key(model)
        self._name = f"structured({schema.__name__})"

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        messages = to_messages(input)
        start = _working.start(self.endpoint)
        for index in range(start, len(METHODS)):
            method = METHODS[index]
            try:
                reply = self._ask(method, messages, config)
            except Exception as exc:
                if index == len(METHODS) - 1 or not _refuses(exc, method):
                    raise
                _working.remember(self.endpoint, index + 1)
                continue
            return self._parse_or_repair(method, messages, reply, config)
        raise AssertionError("unreachable: the last method returns or raises")

    # ----------------------------------------------------------------- steps
    def _ask(self, method: _Method, messages: list[BaseMessage], config: RunConfig | None) -> AIMessage:
        bound, messages = self._request(method, messages)
        reply: AIMessage = bound.invoke(messages, config)
        return reply

    def _request(self, method: _Method, messages: list[BaseMessage]) -> tuple[Any, list[BaseMessage]]:
        schema = self.schema
        if method.name == "json_schema":
            return self.model.bind(response_format=json_schema_format(schema, self.strict)), messages
        if method.name == "json_object":
            fmt = {"type": "json_object", "schema": schema.model_json_schema()}
            return self.model.bind(response_format=fmt), messages
        if method.name == "tool":
            tool = to_openai_tool(schema)
            return self.model.bind_tools([tool], tool_choice=tool_name(tool)), messages
        return self.model, _with_schema_note(messages, schema)

    def _parse_or_repair(
        self, method: _Method, messages: list[BaseMessage], reply: AIMessage, config: RunConfig | None
    ) -> Any:
        parser = StructuredOutputParser(self.schema, method=method.parse_as)  # type: ignore[arg-type]
        try:
            return parser.invoke(reply)
        except OutputParserError as exc:
            retry = [*messages, AIMessage(exc.raw or reply.text), HumanMessage(_REPAIR.format(error=exc.reason))]
            return parser.invoke(self._ask(method, retry, config))


def _refuses(exc: BaseException, method: _Method) -> bool:
    if isinstance(exc, OutputParserError) or not method.refusal_words:
        return False
    return names_any(exc, method.refusal_words)


def _with_schema_note(messages: list[BaseMessage], schema: type[BaseModel]) -> list[BaseMessage]:
    note = (
        "Reply with only one JSON object that matches this JSON schema, nothing else: "
        + json.dumps(schema.model_json_schema(), ensure_ascii=False)
    )
    return with_system_note(messages, note)
