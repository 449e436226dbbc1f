"""The tool-calling agent: model → tools (concurrently when several are asked for) → model … until
the model answers without tool calls or ``max_steps`` model turns have run. A call repeated with
the same arguments is not run again (:mod:`maru.agents.repeats`): the model is told so instead.

It is a runnable. ``invoke`` returns an :class:`AgentResult` (final text, the whole transcript, the
steps); ``stream`` yields one :class:`AgentStep` per model turn and per tool result as they happen,
then the result — the "view of the agent's internals" without a hosted service. With tracing on,
every model and tool call is also a child run of the agent's run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..messages import AIMessage, BaseMessage, SystemMessage, ToolCall, ToolMessage, to_messages
from .repeats import RepeatGuard, merge_results
from .tools import Tool, as_tool

__all__ = ["AgentResult", "AgentStep", "ToolCallingAgent", "agent_input_messages"]


@dataclass(slots=True)
class AgentStep:
    """One thing the agent did: a model turn (``kind="model"``, with its message) or a tool result
    (``kind="tool"``, with the call and the tool message)."""

    kind: Literal["model", "tool"]
    step: int
    message: BaseMessage
    call: ToolCall | None = None

    @property
    def ok(self) -> bool:
        return not (isinstance(self.message, ToolMessage) and self.message.status == "error")


@dataclass(slots=True)
class AgentResult:
    """The final answer, why the loop stopped, and everything said on the way."""

    output: str
    messages: list[BaseMessage]
    steps: list[AgentStep] = field(default_factory=list)
    stopped: Literal["answer", "max_steps"] = "answer"

    def __str__(self) -> str:
        return self.output


def agent_input_messages(input: Any, system: str | None) -> list[BaseMessage]:
    """A string, messages, or ``{"input": ..., "history": [...]}`` as the opening messages."""
    if isinstance(input, dict):
        history = to_messages(input.get("history") or [])
        messages = [*history, *to_messages(input["input"] if "input" in input else input["question"])]
    else:
        messages = to_messages(input)
    if system and not (messages and isinstance(messages[0], SystemMessage)):
        messages.insert(0, SystemMessage(system))
    return messages


def _tools_by_name(tools: Sequence[Any]) -> dict[str, Tool]:
    named: dict[str, Tool] = {}
    for t in tools:
        t = as_tool(t)
        if t.name in named:
            raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
        named[t.name] = t
    return named


class ToolCallingAgent(Runnable[Any, AgentResult]):
    """An agent for models with native tool calling (``bind_tools``)."""

    io_bound = True

    def __init__(
        self,
        model: Any,
        tools: Sequence[Any],
        *,
        system: str | None = None,
        max_steps: int = 10,
        parallel: bool = True,
        first_tool_choice: Any = None,
    ) -> None:
        """``first_tool_choice``: the ``tool_choice`` of the first model turn only — ``"required"``
        or a tool's name makes a model that would rather answer at once (small local models do)
        look something up first; later turns are free to answer."""
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.tools = _tools_by_name(tools)
        self.model = model.bind_tools(list(self.tools.values())) if self.tools else model
        self.first_model = self.model
        if self.tools and first_tool_choice is not None:
            self.first_model = model.bind_tools(list(self.tools.values()), tool_choice=first_tool_choice)
        self.system, self.max_steps, self.parallel = system, max_steps, parallel

    def _model_for(self, step: int) -> Any:
        return self.first_model if step == 1 else self.model

    # ------------------------------------------------------------------ sync
    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        messages = agent_input_messages(input, self.system)
        steps: list[AgentStep] = []
        guard = RepeatGuard()
        for step in range(1, self.max_steps + 1):
            reply: AIMessage = self._model_for(step).invoke(messages, config)
            messages.append(reply)
            steps.append(AgentStep("model", step, reply))
            yield steps[-1]
            if not reply.tool_calls:
                yield AgentResult(reply.text, messages, steps, "answer")
                return
            answered, fresh = guard.screen(reply.tool_calls, step)
            results = merge_results(answered, self._run_calls(fresh, config))
            for call, result in zip(reply.tool_calls, results, strict=True):
                messages.append(result)
                steps.append(AgentStep("tool", step, result, call))
                yield steps[-1]
        yield AgentResult(partial_answer(messages, self.max_steps), messages, steps, "max_steps")

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        return final_result(self._stream(input, config))

    def _run_calls(self, calls: list[ToolCall], config: RunConfig | None) -> list[ToolMessage]:
        if len(calls) <= 1 or not self.parallel:
            return [self._run_one(c, config) for c in calls]
        from ..core.executor import run_bounded

        outcomes = run_bounded(lambda i: self._run_one(calls[i], config), len(calls), None)
        return [value for _, value in outcomes]

    def _run_one(self, call: ToolCall, config: RunConfig | None) -> ToolMessage:
        chosen = self.tools.get(call.name)
        if chosen is None:
            return _unknown_tool(call, self.tools)
        return chosen.run_call(call, config)

    # ------------------------------------------------------------------ async
    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        import asyncio

        messages = agent_input_messages(input, self.system)
        steps: list[AgentStep] = []
        guard = RepeatGuard()
        for step in range(1, self.max_steps + 1):
            reply: AIMessage = await self._model_for(step).ainvoke(messages, config)
            messages.append(reply)
            steps.append(AgentStep("model", step, reply))
            yield steps[-1]
            if not reply.tool_calls:
                yield AgentResult(reply.text, messages, steps, "answer")
                return
            answered, fresh = guard.screen(reply.tool_calls, step)
            ran = await asyncio.gather(*(self._arun_one(c, config) for c in fresh))
            results = merge_results(answered, ran)
            for call, result in zip(reply.tool_calls, results, strict=True):
                messages.append(result)
                steps.append(AgentStep("tool", step, result, call))
                yield steps[-1]
        yield AgentResult(partial_answer(messages, self.max_steps), messages, steps, "max_steps")

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        result = None
        async for item in self._astream(input, config):
            result = item
        assert isinstance(result, AgentResult)
        return result

    async def _arun_one(self, call: ToolCall, config: RunConfig | None) -> ToolMessage:
        chosen = self.tools.get(call.name)
        if chosen is None:
            return _unknown_tool(call, self.tools)
        return await chosen.arun_call(call, config)


def final_result(items: Iterable[Any]) -> AgentResult:
    """Run an agent's step stream to the end and return the result it closes with."""
    result = None
    for item in items:
        result = item
    if not isinstance(result, AgentResult):
        raise RuntimeError("the agent's step stream ended without a result")
    return result


def partial_answer(messages: Sequence[BaseMessage], max_steps: int) -> str:
    """What an agent that ran out of steps can still say: its last words, else its last tool
    result, with a note that it stopped — never an empty string."""
    stopped = f"(stopped after {max_steps} model turns without a final answer)"
    for message in reversed(messages):
        if isinstance(message, AIMessage) and message.text.strip():
            return f"{message.text.strip()} {stopped}"
        if isinstance(message, ToolMessage) and message.status != "error" and message.text.strip():
            return f"{message.name or 'a tool'} returned: {message.text.strip()} {stopped}"
    return stopped


def _unknown_tool(call: ToolCall, tools: dict[str, Tool]) -> ToolMessage:
    return ToolMessage(
        f"Error: there is no tool named {call.name!r}. Available tools: {', '.join(sorted(tools))}.",
        tool_call_id=call.id,
        name=call.name,
        status="error",
    )
