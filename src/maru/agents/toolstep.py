"""The ``tools`` node of an agent's graph: run the tool calls of the model's last message.

In order: calls repeated with the same arguments are answered without running
(:mod:`maru.agents.repeats`); calls of tools that need approval pause the run and take a person's
decisions (:mod:`maru.agents.approval`); the rest run — concurrently when there are several — and,
in a checkpointed thread, each result is recorded as the tool returns (:mod:`maru.agents.journal`).
Nothing runs before the pause, so a resumed node (which starts over) runs every tool once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.config import RunConfig
from ..graph.checkpoint import CheckpointSaver
from ..graph.interrupts import interrupt
from ..messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from .approval import ApprovalError, approval_request, read_decisions
from .journal import ToolJournal, keyed
from .repeats import RepeatGuard
from .tools import Tool, as_tool
from .transcript import this_run

__all__ = ["ToolStep", "tools_by_name", "unknown_tool"]


@dataclass(slots=True)
class Turn:
    """The model's message, and per call either the call to run or the message that answers it."""

    reply: AIMessage
    slots: list[ToolCall | ToolMessage]
    edited: bool = False

    def update(self, ran: Sequence[ToolMessage]) -> dict[str, list[BaseMessage]]:
        """The node's update: the tool messages in call order (after the reply as it ran, when a
        person edited its arguments)."""
        results = iter(ran)
        messages: list[BaseMessage] = [s if isinstance(s, ToolMessage) else next(results) for s in self.slots]
        if self.edited:
            calls = [s if isinstance(s, ToolCall) else c for s, c in zip(self.slots, self.reply.tool_calls, strict=True)]
            messages.insert(0, replace(self.reply, tool_calls=calls))
        return {"messages": messages}

    def to_run(self) -> list[int]:
        return [i for i, slot in enumerate(self.slots) if isinstance(slot, ToolCall)]


class ToolStep:
    """Runs one turn's tool calls for an agent (sync or async)."""

    def __init__(
        self, tools: dict[str, Tool], approve: frozenset[str], parallel: bool, saver: CheckpointSaver | None
    ) -> None:
        self.tools, self.approve, self.parallel, self.saver = tools, approve, parallel, saver

    def run(self, state: dict[str, Any], config: RunConfig | None) -> dict[str, Any]:
        turn = self.plan(state["messages"])
        journal = self._journal()
        todo = turn.to_run()
        if len(todo) <= 1 or not self.parallel:
            ran = [self._run_one(i, turn.slots[i], journal, config) for i in todo]  # type: ignore[arg-type]
        else:
            from ..core.executor import run_bounded

            outcomes = run_bounded(lambda k: self._run_one(todo[k], turn.slots[todo[k]], journal, config), len(todo), None)  # type: ignore[arg-type]
            ran = [_value(ok, value) for ok, value in outcomes]
        return turn.update(ran)

    async def arun(self, state: dict[str, Any], config: RunConfig | None) -> dict[str, Any]:
        turn = self.plan(state["messages"])
        journal = self._journal()
        ran = await asyncio.gather(
            *(self._arun_one(i, turn.slots[i], journal, config) for i in turn.to_run())  # type: ignore[arg-type]
        )
        return turn.update(ran)

    # ----------------------------------------------------------------- deciding
    def plan(self, messages: Sequence[BaseMessage]) -> Turn:
        """What to do with each call of the last message: answer repeats, ask about the calls
        that need approval (this pauses the run the first time), run the rest."""
        run = this_run(messages)
        reply = run[-1]
        if not isinstance(reply, AIMessage):
            raise RuntimeError(f"the tools node runs after a model message with tool calls, not {type(reply).__name__}")
        guard = RepeatGuard()
        turn = 0
        for message in run[:-1]:
            if isinstance(message, AIMessage):
                turn += 1
                guard.answer_repeats(message.tool_calls, turn)
        answered = guard.answer_repeats(reply.tool_calls, turn + 1)
        slots: list[ToolCall | ToolMessage] = [
            message if message is not None else call for call, message in zip(reply.tool_calls, answered, strict=True)
        ]
        asking = [s for s in slots if isinstance(s, ToolCall) and s.name in self.approve]
        if not asking:
            return Turn(reply, slots)
        request = approval_request(asking)
        answer = interrupt(request)
        while True:
            try:
                decisions = read_decisions(answer, asking)
                break
            except ApprovalError as exc:  # answered through the graph itself: ask again, saying why
                answer = interrupt({**request, "error": str(exc)})
        decided = [decisions[s.id].apply(s) if isinstance(s, ToolCall) and s.id in decisions else s for s in slots]
        edited = any(d.action == "edit" for d in decisions.values())
        return Turn(reply, decided, edited)

    def _journal(self) -> ToolJournal | None:
        return None if self.saver is None else ToolJournal(self.saver)

    # ----------------------------------------------------------------- running
    def _run_one(self, index: int, call: ToolCall, journal: ToolJournal | None, config: RunConfig | None) -> ToolMessage:
        chosen = self._prepare(index, call, journal)
        if isinstance(chosen, ToolMessage):
            return chosen
        with keyed(journal.key(index, call) if journal is not None else None):
            result = chosen.run_call(call, config)
        return _recorded(journal, index, call, result)

    async def _arun_one(
        self, index: int, call: ToolCall, journal: ToolJournal | None, config: RunConfig | None
    ) -> ToolMessage:
        chosen = self._prepare(index, call, journal)
        if isinstance(chosen, ToolMessage):
            return chosen
        with keyed(journal.key(index, call) if journal is not None else None):
            result = await chosen.arun_call(call, config)
        return _recorded(journal, index, call, result)

    def _prepare(self, index: int, call: ToolCall, journal: ToolJournal | None) -> Tool | ToolMessage:
        """The tool to run, or the message that stands for running it: an unknown tool's error,
        or the result the journal recorded when this call ran before a crash."""
        chosen = self.tools.get(call.name)
        if chosen is None:
            return unknown_tool(call, self.tools)
        done = journal.done(index, call) if journal is not None else None
        return chosen if done is None else done


def _recorded(journal: ToolJournal | None, index: int, call: ToolCall, result: ToolMessage) -> ToolMessage:
    if journal is not None:
        journal.record(index, call, result)
    return result


def _value(ok: bool, value: Any) -> Any:
    if not ok:
        raise value
    return value


def tools_by_name(tools: Sequence[Any]) -> dict[str, Tool]:
    named: dict[str, Tool] = {}
    for t in tools:
        t = as_tool(t)
        if t.name in named:
            raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
        named[t.name] = t
    return named


def unknown_tool(call: ToolCall, tools: dict[str, Tool]) -> ToolMessage:
    return ToolMessage(
        f"Error: there is no tool named {call.name!r}. Available tools: {', '.join(sorted(tools))}.",
        tool_call_id=call.id,
        name=call.name,
        status="error",
    )
