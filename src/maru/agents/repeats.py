"""The loop guard: a tool call the agent already ran, with the same arguments, is not run again.

Why: small models (and large ones, now and then) ask for the same lookup turn after turn until
``max_steps``, spending every turn and repeating any side effect. The second identical call gets
a short tool message instead, pointing the model at the result it already has, so the next turn
can answer. Arguments are compared as canonical JSON (key order does not matter).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from ..messages import ToolCall, ToolMessage

__all__ = ["RepeatGuard", "merge_results"]


class RepeatGuard:
    """Remembers the tool calls of one agent run and answers the repeats."""

    def __init__(self) -> None:
        self._first_turn: dict[tuple[str, str], int] = {}

    def screen(
        self, calls: Sequence[ToolCall], turn: int
    ) -> tuple[list[ToolMessage | None], list[ToolCall]]:
        """Per call, the message for a repeat or ``None``; and the calls to run (now remembered)."""
        answered = self.answer_repeats(calls, turn)
        return answered, [call for call, message in zip(calls, answered, strict=True) if message is None]

    def answer_repeats(self, calls: Sequence[ToolCall], turn: int) -> list[ToolMessage | None]:
        """Per call: the message for a repeat, or ``None`` for a call to run (now remembered).
        A call asked for twice within one turn runs once, too."""
        run_now: set[tuple[str, str]] = set()
        answered: list[ToolMessage | None] = []
        for call in calls:
            key = (call.name, json.dumps(call.args, sort_keys=True, default=str))
            first = self._first_turn.setdefault(key, turn)
            if first == turn and key not in run_now:
                run_now.add(key)
                answered.append(None)
            else:
                answered.append(_repeat_message(call, first))
        return answered


def _repeat_message(call: ToolCall, first_turn: int) -> ToolMessage:
    return ToolMessage(
        f"Not run again: {call.name} was already called with these arguments (turn {first_turn}), "
        "and its result is above. Answer from it, or call a tool with different arguments.",
        tool_call_id=call.id,
        name=call.name,
        status="error",
    )


def merge_results(answered: Iterable[ToolMessage | None], ran: Iterable[ToolMessage]) -> list[ToolMessage]:
    """The repeats' messages with the results of the calls that ran, back in call order."""
    results: Iterator[ToolMessage] = iter(ran)
    return [message if message is not None else next(results) for message in answered]
