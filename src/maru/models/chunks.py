"""A whole message as one stream chunk, and a stream of chunks as one message.

``ChatModel`` (``base``) derives its missing provider hooks with these conversions and request
accounting (``accounting``) replays and settles streams with them; both import this leaf, so
neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..messages import AIMessage, AIMessageChunk

__all__ = ["gather_message", "message_to_chunk"]


def message_to_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole message as a single stream chunk (tool calls stay parsed)."""
    if isinstance(message, AIMessageChunk):
        return message
    return AIMessageChunk(
        content=message.content,
        name=message.name,
        id=message.id,
        metadata=message.metadata,
        tool_calls=list(message.tool_calls),
        usage=message.usage,
        response_metadata=message.response_metadata,
    )


def gather_message(chunks: Iterable[AIMessageChunk]) -> AIMessage:
    """The sum of a stream as the message it makes up (an empty one for no chunks)."""
    total: AIMessageChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    return AIMessage("") if total is None else total.to_message()
