"""``ScriptedChatModel``: a test double that plays back replies you give it.

It is how maru's tests and offline examples run without a network or an API key. It is not a
language model and nothing presents it as one: it answers with exactly what the script says, in
order, and records what it was asked so tests can check the prompts and parameters a chain sent.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, NamedTuple, cast

from ..errors import ConfigurationError
from ..messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk, Usage
from .base import ChatModel

__all__ = ["ScriptedCall", "ScriptedChatModel", "estimate_tokens"]

Reply = (
    str
    | AIMessage
    | Callable[[list[BaseMessage]], "str | AIMessage"]
    | BaseException
    | type[BaseException]
)
"""One scripted answer: text, a message (tool calls included), a function of the messages, or an
exception (instance or class) to raise."""

_TOKEN = re.compile(r"\s*\S+(?:\s+$)?|\s+")
"""A word with the whitespace before it (the last word also takes trailing whitespace): the pieces
join back to the exact text."""


def estimate_tokens(text: str) -> int:
    """About four characters per token: deterministic and plausible, which is all a test double's
    usage needs to be (real counting lives in ``maru.usage``)."""
    return (len(text) + 3) // 4


class ScriptedCall(NamedTuple):
    """What the model received on one call."""

    messages: list[BaseMessage]
    params: dict[str, Any]


class ScriptedChatModel(ChatModel):
    """A chat model for tests and offline examples that answers from a script — a test double.

    ``replies`` are played in order, one per call (``cycle=True`` starts over at the end; otherwise
    running out raises :class:`~maru.errors.ConfigurationError`). Each reply is a string, an
    ``AIMessage`` (with ``tool_calls``), a callable ``(messages) -> str | AIMessage``, or an exception
    instance or class to raise. Streaming yields the text word by word (the pieces join to the exact
    text), then tool calls as ``ToolCallChunk`` s, then a last chunk with the usage. ``calls`` holds
    the messages and parameters of every call (past ``max_calls`` entries, the older half is dropped).

    It does no I/O, so ``io_bound`` is ``False`` by default: batches run inline and in input order,
    which keeps the mapping of replies to inputs deterministic. Pass ``io_bound=True`` to exercise
    the concurrent paths.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        cycle: bool = False,
        model: str = "scripted",
        io_bound: bool = False,
        max_calls: int = 10_000,
        **defaults: Any,
    ) -> None:
        super().__init__(model=model, **defaults)
        self.replies: list[Reply] = list(replies)
        self.cycle = cycle
        self.io_bound = io_bound
        self.calls: list[ScriptedCall] = []
        self.max_calls = max_calls
        self._counter = itertools.count()

    def __repr__(self) -> str:
        return f"ScriptedChatModel({len(self.replies)} replies{', cycle' if self.cycle else ''})"

    @property
    def provider(self) -> str:
        """``maru.scripted``: a trace says plainly that no real model answered."""
        return "maru.scripted"

    def reset(self) -> None:
        """Start the script over and forget recorded calls."""
        self.calls.clear()
        self._counter = itertools.count()

    # ----------------------------------------------------------------- provider hooks
    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        return self._reply(messages, params)

    async def _agenerate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        return self._reply(messages, params)

    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        # a generator, so the reply (or its exception) comes on the first next(), as with a real
        # provider: stream retries and fallbacks see the failure
        yield from _chunks(self._reply(messages, params))

    async def _astream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        for chunk in _chunks(self._reply(messages, params)):
            yield chunk

    # ----------------------------------------------------------------- the script
    def _reply(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        n = next(self._counter)  # atomic under the GIL, so concurrent batches never share a reply
        calls = self.calls
        calls.append(ScriptedCall(messages, params))
        if len(calls) > self.max_calls:  # a benchmark loop must not grow memory without bound
            del calls[: len(calls) // 2]
        replies = self.replies
        if n >= len(replies):
            if not (self.cycle and replies):
                raise ConfigurationError(
                    f"ScriptedChatModel ran out of replies: call {n + 1} but the script has "
                    f"{len(replies)}; add replies or pass cycle=True"
                )
            n %= len(replies)
        reply = replies[n]
        if isinstance(reply, str):  # the common case, kept short: this is on benchmark paths
            return AIMessage(
                content=reply,
                usage=Usage(_prompt_tokens(messages), estimate_tokens(reply)),
                response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
            )
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, type) and issubclass(reply, BaseException):
            raise reply()
        if callable(reply) and not isinstance(reply, AIMessage):
            # ``callable`` cannot narrow the union to the function member: the cast says what is left
            reply = cast("Callable[[list[BaseMessage]], str | AIMessage]", reply)(messages)
            if isinstance(reply, str):
                reply = AIMessage(reply)
        if not isinstance(reply, AIMessage):
            raise TypeError(
                f"a scripted reply must be a str, an AIMessage, a function returning one of those, or "
                f"an exception; got {type(reply).__name__}: {reply!r:.80}"
            )
        return self._from_message(reply, messages)

    def _from_message(self, reply: AIMessage, messages: list[BaseMessage]) -> AIMessage:
        """A fresh copy of a scripted message, with usage and metadata filled in where missing."""
        if isinstance(reply, AIMessageChunk):
            reply = reply.to_message()
        usage = reply.usage
        if usage is None:
            output = estimate_tokens(reply.text)
            for call in reply.tool_calls:
                output += estimate_tokens(call.name) + estimate_tokens(json.dumps(call.args))
            usage = Usage(_prompt_tokens(messages), output)
        metadata = {
            "model_name": self.model_name,
            "finish_reason": "tool_calls" if reply.tool_calls else "stop",
        }
        metadata.update(reply.response_metadata)
        return AIMessage(
            content=reply.content,
            name=reply.name,
            id=reply.id,
            metadata=dict(reply.metadata),
            tool_calls=list(reply.tool_calls),
            usage=usage,
            response_metadata=metadata,
        )


def _prompt_tokens(messages: list[BaseMessage]) -> int:
    """~4 characters per token plus a few tokens of per-message framing, as chat formats add."""
    chars = 0
    for m in messages:
        content = m.content
        chars += len(content) if content.__class__ is str else len(m.text)
    return (chars + 3) // 4 + 3 * len(messages)


def _chunks(message: AIMessage) -> Iterator[AIMessageChunk]:
    """Stream a message: text pieces, then one tool-call chunk pair per call, then the usage chunk."""
    content = message.content
    if isinstance(content, str):
        for piece in _TOKEN.findall(content):
            yield AIMessageChunk(piece)
    elif content:
        yield AIMessageChunk(content)
    for index, call in enumerate(message.tool_calls):
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index, call.id, call.name, "")])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index, args=json.dumps(call.args))])
    yield AIMessageChunk(
        name=message.name,
        id=message.id,
        metadata=message.metadata,
        usage=message.usage,
        response_metadata=message.response_metadata,
    )
