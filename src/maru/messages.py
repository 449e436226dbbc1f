"""Chat messages: system, human, AI and tool messages, addable AI chunks, usage and tool calls.

Plain slotted dataclasses: building one costs a few hundred nanoseconds, they compare by value, and
``to_dict`` / ``message_from_dict`` give the wire shape (``{"role": "user", "content": …}``) used by
history stores, caches, traces and the HTTP server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Content = str | list[dict[str, Any]]
"""Text, or a list of content parts (``{"type": "text", "text": …}``, ``{"type": "image_url", …}``)."""


@dataclass(slots=True)
class Usage:
    """Tokens one model call consumed. ``cached_tokens`` is the part of the input the provider served
    from its prompt cache (billed at a lower rate)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage | None) -> Usage:
        if other is None:
            return self
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    __radd__ = __add__

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(slots=True)
class ToolCall:
    """A model's request to run a tool with parsed arguments."""

    name: str
    args: dict[str, Any]
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "args": self.args}


@dataclass(slots=True)
class ToolCallChunk:
    """A piece of a streamed tool call. Pieces with the same ``index`` add up: ``args`` is raw JSON
    text that is complete only once the stream ends."""

    index: int
    id: str = ""
    name: str = ""
    args: str = ""


def _text_of(content: Content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


@dataclass(slots=True)
class BaseMessage:
    content: Content = ""
    name: str | None = None
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    role: ClassVar[str] = ""
    type: ClassVar[str] = ""

    @property
    def text(self) -> str:
        """The message's text, whether content is a string or a list of parts."""
        return _text_of(self.content)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            data["name"] = self.name
        if self.id is not None:
            data["id"] = self.id
        if self.metadata:
            data["metadata"] = self.metadata
        return data

    def pretty(self) -> str:
        return f"{self.type.upper()}: {self.text}"


@dataclass(slots=True)
class SystemMessage(BaseMessage):
    role: ClassVar[str] = "system"
    type: ClassVar[str] = "system"


@dataclass(slots=True)
class HumanMessage(BaseMessage):
    role: ClassVar[str] = "user"
    type: ClassVar[str] = "human"


@dataclass(slots=True)
class AIMessage(BaseMessage):
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    response_metadata: dict[str, Any] = field(default_factory=dict)

    role: ClassVar[str] = "assistant"
    type: ClassVar[str] = "ai"

    @property
    def cached(self) -> bool:
        """Whether this answer was served from a response cache (it cost nothing)."""
        return bool(self.response_metadata.get("cached", False))

    def to_dict(self) -> dict[str, Any]:
        data = BaseMessage.to_dict(self)
        if self.tool_calls:
            data["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.usage is not None:
            data["usage"] = self.usage.to_dict()
        if self.response_metadata:
            data["response_metadata"] = self.response_metadata
        return data


@dataclass(slots=True)
class ToolMessage(BaseMessage):
    tool_call_id: str = ""
    status: Literal["success", "error"] = "success"

    role: ClassVar[str] = "tool"
    type: ClassVar[str] = "tool"

    def to_dict(self) -> dict[str, Any]:
        data = BaseMessage.to_dict(self)
        data["tool_call_id"] = self.tool_call_id
        if self.status != "success":
            data["status"] = self.status
        return data


@dataclass(slots=True)
class AIMessageChunk(AIMessage):
    """A piece of a streamed AI message. Chunks add with ``+``; the sum of a whole stream equals the
    message the model would have returned, including its tool calls and its final usage."""

    tool_call_chunks: list[ToolCallChunk] = field(default_factory=list)

    type: ClassVar[str] = "AIMessageChunk"

    def __add__(self, other: Any) -> AIMessageChunk:
        if not isinstance(other, AIMessageChunk):
            return NotImplemented
        if isinstance(self.content, str) and isinstance(other.content, str):
            content: Content = self.content + other.content
        else:
            content = _as_parts(self.content) + _as_parts(other.content)
        merged_calls = {c.index: ToolCallChunk(c.index, c.id, c.name, c.args) for c in self.tool_call_chunks}
        for c in other.tool_call_chunks:
            have = merged_calls.get(c.index)
            if have is None:
                merged_calls[c.index] = ToolCallChunk(c.index, c.id, c.name, c.args)
            else:
                have.id = have.id or c.id
                have.name = have.name or c.name
                have.args += c.args
        usage = self.usage + other.usage if self.usage is not None else other.usage
        return AIMessageChunk(
            content=content,
            name=self.name or other.name,
            id=self.id or other.id,
            metadata={**self.metadata, **other.metadata},
            tool_calls=[*self.tool_calls, *other.tool_calls],
            usage=usage,
            response_metadata={**self.response_metadata, **other.response_metadata},
            tool_call_chunks=sorted(merged_calls.values(), key=lambda c: c.index),
        )

    def to_message(self) -> AIMessage:
        """The complete message: streamed tool-call pieces parsed into tool calls."""
        calls = list(self.tool_calls)
        for chunk in self.tool_call_chunks:
            try:
                args = json.loads(chunk.args) if chunk.args else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"tool call {chunk.name!r} streamed arguments that are not valid JSON: {chunk.args!r}"
                ) from exc
            calls.append(ToolCall(name=chunk.name, args=args, id=chunk.id))
        return AIMessage(
            content=self.content,
            name=self.name,
            id=self.id,
            metadata=self.metadata,
            tool_calls=calls,
            usage=self.usage,
            response_metadata=self.response_metadata,
        )


def _as_parts(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


AnyMessage = SystemMessage | HumanMessage | AIMessage | ToolMessage

_BY_ROLE: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "developer": SystemMessage,
    "user": HumanMessage,
    "human": HumanMessage,
    "assistant": AIMessage,
    "ai": AIMessage,
    "tool": ToolMessage,
}


def message_from_dict(data: Mapping[str, Any]) -> BaseMessage:
    """Inverse of ``to_dict``; also reads OpenAI-shaped dicts (tool calls with ``function``)."""
    role = data.get("role") or data.get("type")
    cls = _BY_ROLE.get(str(role))
    if cls is None:
        raise ValueError(f"unknown message role {role!r}; expected one of {sorted(_BY_ROLE)}")
    common: dict[str, Any] = {
        "content": data.get("content") or "",
        "name": data.get("name"),
        "id": data.get("id"),
        "metadata": dict(data.get("metadata") or {}),
    }
    if cls is AIMessage:
        usage = data.get("usage")
        return AIMessage(
            **common,
            tool_calls=[_tool_call_from_dict(tc) for tc in data.get("tool_calls") or ()],
            usage=Usage(**usage) if usage else None,
            response_metadata=dict(data.get("response_metadata") or {}),
        )
    if cls is ToolMessage:
        return ToolMessage(**common, tool_call_id=data.get("tool_call_id", ""), status=data.get("status", "success"))
    return cls(**common)


def _tool_call_from_dict(data: Mapping[str, Any]) -> ToolCall:
    if "function" in data:  # OpenAI wire shape
        fn = data["function"]
        args = fn.get("arguments") or "{}"
        return ToolCall(name=fn["name"], args=json.loads(args) if isinstance(args, str) else args, id=data.get("id", ""))
    return ToolCall(name=data["name"], args=dict(data.get("args") or {}), id=data.get("id", ""))


MessageLike = BaseMessage | str | tuple[str, Any] | Mapping[str, Any]


def to_message(value: MessageLike) -> BaseMessage:
    """Accept what users write: a message, ``("human", "hi")``, ``{"role": "user", …}`` or a string
    (a human message)."""
    if isinstance(value, BaseMessage):
        return value
    if isinstance(value, str):
        return HumanMessage(value)
    if isinstance(value, tuple) and len(value) == 2:
        role, content = value
        cls = _BY_ROLE.get(role)
        if cls is None:
            raise ValueError(f"unknown message role {role!r} in {value!r}; expected one of {sorted(_BY_ROLE)}")
        return cls(content)
    if isinstance(value, Mapping):
        return message_from_dict(value)
    if type(value).__module__.startswith("langchain") and type(getattr(value, "type", None)) is str:
        return _from_langchain(value)
    raise TypeError(
        f"cannot make a chat message from {type(value).__name__}: {value!r:.80}; pass a message, "
        "a (role, content) tuple, a {'role', 'content'} dict or a string"
    )


def _from_langchain(message: Any) -> BaseMessage:
    """A LangChain message (``type``, ``content``, tool calls as dicts) as maru's, so LangChain
    prompts, histories and steps feed maru's models; recognised by shape, never imported."""
    data: dict[str, Any] = {"type": message.type, "content": message.content}
    for key in ("name", "id", "tool_calls", "tool_call_id"):
        if value := getattr(message, key, None):
            data[key] = value
    return message_from_dict(data)


def to_messages(value: Any) -> list[BaseMessage]:
    """Normalise a model input into a list of messages: a string, one message, a prompt value
    (anything with ``to_messages()``) or a sequence of message-likes."""
    if isinstance(value, str):
        return [HumanMessage(value)]
    if isinstance(value, BaseMessage):
        return [value]
    to_msgs = getattr(value, "to_messages", None)
    if to_msgs is not None:
        messages = to_msgs()
        if messages and not isinstance(messages[0], BaseMessage):  # a LangChain prompt value
            return [to_message(m) for m in messages]
        return messages
    if isinstance(value, Sequence):
        return [to_message(v) for v in value]
    raise TypeError(
        f"a chat model takes a string, messages or a prompt value, got {type(value).__name__}: {value!r:.80}"
    )


def messages_to_dicts(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in messages]


def messages_from_dicts(data: Iterable[Mapping[str, Any]]) -> list[BaseMessage]:
    return [message_from_dict(d) for d in data]


__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "Content",
    "HumanMessage",
    "MessageLike",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "Usage",
    "message_from_dict",
    "messages_from_dicts",
    "messages_to_dicts",
    "to_message",
    "to_messages",
]
