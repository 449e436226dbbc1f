"""Structured output: a chat model made to answer with a validated pydantic object.

``auto`` (the default, :mod:`maru.models.adaptive`) picks what the endpoint supports. Two fixed
ways to ask, one way to check: ``json_schema`` sends the model's JSON schema as
``response_format`` (OpenAI, Gemini, vLLM, llama.cpp and Ollama all accept it); ``tool`` forces a call
of a tool shaped like the model, for servers that only do tool calling. Either way the answer is
parsed and validated here, and a failure raises :class:`~maru.errors.OutputParserError` carrying
the raw text, so the caller sees what the model actually said.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import OutputParserError
from ..messages import AIMessage, AIMessageChunk
from .tools_schema import to_openai_tool, tool_name

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .base import ChatModel

__all__ = ["StructuredOutputParser", "json_schema_format", "structured_output"]


def json_schema_format(schema: type[BaseModel], strict: bool | None = None) -> dict[str, Any]:
    """The ``response_format`` that asks for JSON matching the pydantic model ``schema``."""
    spec = to_openai_tool(schema)["function"]
    json_schema: dict[str, Any] = {"name": spec["name"], "schema": spec["parameters"]}
    if "description" in spec:
        json_schema["description"] = spec["description"]
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


def structured_output(
    model: ChatModel,
    schema: type[BaseModel],
    *,
    method: Literal["auto", "json_schema", "tool"] = "auto",
    strict: bool | None = None,
) -> Runnable[Any, Any]:
    from pydantic import BaseModel

    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(
            f"with_structured_output() takes a pydantic model class, got {type(schema).__name__}: "
            f"{schema!r:.80}"
        )
    if method == "auto":
        from .adaptive import AdaptiveStructuredOutput

        return AdaptiveStructuredOutput(model, schema, strict)
    if method == "json_schema":
        bound = model.bind(response_format=json_schema_format(schema, strict))
    elif method == "tool":
        tool = to_openai_tool(schema)
        if strict is not None:
            tool["function"] = {**tool["function"], "strict": strict}
        bound = model.bind_tools([tool], tool_choice=tool_name(tool))
    else:
        raise ValueError(f"with_structured_output(method={method!r}): use 'auto', 'json_schema' or 'tool'")
    return bound | StructuredOutputParser(schema, method=method)


class StructuredOutputParser(Runnable[AIMessage, Any]):
    """Reads a model's answer into a pydantic object: from its text (JSON, optionally in a
    Markdown code fence) or from its tool call named after the schema."""

    kind: ClassVar[str] = "parser"

    def __init__(self, schema: type[BaseModel], *, method: Literal["json_schema", "tool"]) -> None:
        self.schema = schema
        self.method = method
        self.tool_name = schema.__name__
        self._name = f"structured({schema.__name__})"

    def _invoke(self, input: AIMessage, config: RunConfig | None = None, **kwargs: Any) -> Any:
        if isinstance(input, AIMessageChunk):
            input = input.to_message()
        if not isinstance(input, AIMessage):
            raise TypeError(f"{self.name} parses an AIMessage, got {type(input).__name__}")
        if self.method == "tool":
            data, raw = self._from_tool_call(input)
        else:
            data, raw = self._from_text(input)
        from pydantic import ValidationError

        try:
            return self.schema.model_validate(data)
        except ValidationError as exc:
            raise OutputParserError(
                f"the model's output does not match {self.schema.__name__}: {exc}", raw=raw
            ) from exc

    def _stream(
        self, input: AIMessage, config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        yield self._invoke(input, config, **kwargs)

    def _from_text(self, message: AIMessage) -> tuple[Any, str]:
        raw = message.text
        refusal = message.response_metadata.get("refusal")
        if refusal and not raw:
            raise OutputParserError(
                f"the model refused to answer as {self.schema.__name__}", raw=refusal
            )
        try:
            return json.loads(_strip_fence(raw)), raw
        except json.JSONDecodeError as exc:
            raise OutputParserError(
                f"the model's output is not the JSON object {self.schema.__name__} asks for ({exc.msg})",
                raw=raw,
            ) from exc

    def _from_tool_call(self, message: AIMessage) -> tuple[Any, str]:
        for call in message.tool_calls:
            if call.name == self.tool_name:
                return call.args, json.dumps(call.args, ensure_ascii=False)
        raise OutputParserError(
            f"the model did not call the tool {self.tool_name!r} that carries the structured answer "
            f"(tool calls: {[c.name for c in message.tool_calls]})",
            raw=message.text,
        )


def _strip_fence(text: str) -> str:
    """Local models often wrap JSON in a Markdown code fence even when asked not to."""
    stripped = text.strip()
    if stripped.startswith("```"):
        body = stripped[3:]
        newline = body.find("\n")
        body = body[newline + 1 :] if newline >= 0 else body
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
        return body.strip()
    return stripped
