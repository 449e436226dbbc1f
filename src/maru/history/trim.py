"""Trimming a conversation to a token budget, keeping the system message and whole turns."""

from __future__ import annotations

from collections.abc import Sequence

from ..messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

__all__ = ["trim_messages"]


def trim_messages(
    messages: Sequence[BaseMessage],
    max_tokens: int,
    *,
    model: str | None = None,
    keep_system: bool = True,
) -> list[BaseMessage]:
    """The most recent messages that fit in ``max_tokens``, plus the leading system message.

    The cut never leaves a tool result without the AI message that asked for it, nor an AI tool call
    without its results: such a fragment is dropped with the older part. Tokens are counted with
    :func:`maru.usage.tokens.count_tokens` for ``model`` (exact with tiktoken files, estimated offline).
    """
    from ..usage.tokens import count_tokens

    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    msgs = list(messages)
    system = msgs[0] if keep_system and msgs and isinstance(msgs[0], SystemMessage) else None
    body = msgs[1:] if system is not None else msgs
    budget = max_tokens - (count_tokens(system, model) if system is not None else 0)
    kept: list[BaseMessage] = []
    for message in reversed(body):
        cost = count_tokens(message, model)
        if cost > budget:
            break
        budget -= cost
        kept.append(message)
    kept.reverse()
    kept = _drop_broken_head(kept)
    return ([system] if system is not None else []) + kept


def _drop_broken_head(kept: list[BaseMessage]) -> list[BaseMessage]:
    """Drop leading tool results (their call was cut) and a leading AI tool call whose results are
    not all kept."""
    start = 0
    while start < len(kept) and isinstance(kept[start], ToolMessage):
        start += 1
    kept = kept[start:]
    if kept and isinstance(kept[0], AIMessage) and kept[0].tool_calls:
        wanted = {tc.id for tc in kept[0].tool_calls}
        answered = {m.tool_call_id for m in kept[1:] if isinstance(m, ToolMessage)}
        if not wanted <= answered:
            return _drop_broken_head(kept[1:])
    return kept
