"""What a prompt produces: a value that is both text (for completion models) and messages (for chat
models). Chat models accept it directly, through ``to_messages()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ..messages import BaseMessage, HumanMessage

__all__ = ["ChatPromptValue", "PromptValue", "StringPromptValue", "messages_to_text"]

_LABELS = {"system": "System", "human": "Human", "ai": "AI", "AIMessageChunk": "AI", "tool": "Tool"}


def messages_to_text(messages: Iterable[BaseMessage]) -> str:
    """Messages as a transcript, one ``Role: text`` line per message (``System``, ``Human``, ``AI``,
    ``Tool``)."""
    return "\n".join(f"{_LABELS.get(m.type, m.type.title())}: {m.text}" for m in messages)


class PromptValue(ABC):
    """A formatted prompt: ``to_string()`` for text, ``to_messages()`` for chat models."""

    __slots__ = ()

    @abstractmethod
    def to_string(self) -> str: ...

    @abstractmethod
    def to_messages(self) -> list[BaseMessage]: ...

    def __str__(self) -> str:
        return self.to_string()


class StringPromptValue(PromptValue):
    """The output of a text template. As messages it is one human message."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def to_string(self) -> str:
        return self.text

    def to_messages(self) -> list[BaseMessage]:
        return [HumanMessage(self.text)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StringPromptValue) and other.text == self.text

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StringPromptValue(text={self.text!r})"


class ChatPromptValue(PromptValue):
    """The output of a chat template: a list of messages. As text it is a ``Role: text`` transcript."""

    __slots__ = ("messages",)

    def __init__(self, messages: list[BaseMessage]) -> None:
        self.messages = messages

    def to_string(self) -> str:
        return messages_to_text(self.messages)

    def to_messages(self) -> list[BaseMessage]:
        return list(self.messages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatPromptValue) and other.messages == self.messages

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChatPromptValue(messages={self.messages!r})"
