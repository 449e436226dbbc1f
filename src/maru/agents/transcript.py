"""What an agent run says: its steps, its result, and where in a thread's messages the run is.

An agent's state is its messages and nothing else, so everything a run needs to know — which turn
it is on, what it already asked for — is read off them: the run's turns are the messages after
the last human message (a new input starts a new run; resuming continues the same one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    to_messages,
)

__all__ = ["AgentResult", "AgentStep", "agent_input_messages", "final_result", "partial_answer", "steps_of", "this_run", "turns_taken"]


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
    """The final answer, why the loop stopped, and everything said on the way: ``messages`` is
    the thread's conversation (with the system prompt), ``steps`` the turns and tool results of the
    run since its input (a run resumed after a pause or a crash lists its earlier steps too).

    ``stopped="interrupted"``: the run paused for approval; ``interrupt`` holds what it asks
    (see :mod:`maru.agents.approval`) and ``output`` is empty until it is resumed."""

    output: str
    messages: list[BaseMessage]
    steps: list[AgentStep] = field(default_factory=list)
    stopped: Literal["answer", "max_steps", "interrupted"] = "answer"
    interrupt: dict[str, Any] | None = None

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


def this_run(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """The messages of the run going on: everything after the last human message."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i + 1 :]
    return messages


def turns_taken(messages: Sequence[BaseMessage]) -> int:
    """How many model turns the run going on has had."""
    return sum(isinstance(m, AIMessage) for m in this_run(messages))


def steps_of(messages: Sequence[BaseMessage]) -> list[AgentStep]:
    """The steps of the run going on, read off its messages: each model message is a turn, each
    tool message a result of the turn before it (with its call, when the turn asked for it)."""
    steps: list[AgentStep] = []
    turn = 0
    asked: dict[str, ToolCall] = {}
    for message in this_run(messages):
        if isinstance(message, AIMessage):
            turn += 1
            asked = {call.id: call for call in message.tool_calls}
            steps.append(AgentStep("model", turn, message))
        elif isinstance(message, ToolMessage):
            steps.append(AgentStep("tool", turn, message, asked.get(message.tool_call_id)))
    return steps


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
