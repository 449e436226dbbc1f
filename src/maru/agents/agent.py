"""The tool-calling agent: model → tools (concurrently when several are asked for) → model … until
the model answers without tool calls or ``max_steps`` model turns have run. A call repeated with
the same arguments is not run again (:mod:`maru.agents.repeats`): the model is told so instead.

It is a runnable over a state graph (:mod:`maru.agents.loop`; ``agent.graph``). ``invoke``
returns an :class:`AgentResult` (final text, the whole transcript, the steps); ``stream`` yields
one :class:`AgentStep` per model turn and per tool result as they happen, then the result. With
``checkpointer=`` each call names a thread (``config={"configurable": {"thread_id": …}}``) that is
saved after every step: a crashed run goes on with ``invoke(None, thread)``, a new input continues
the conversation, and ``approve=[tool names]`` pauses before those tools for a person's decision
(:mod:`maru.agents.approval`). With tracing on, every model and tool call is a child run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..core.config import RunConfig
from ..graph.checkpoint import CheckpointSaver
from ..messages import AIMessage, BaseMessage
from .loop import GraphAgent, acall_model, call_model
from .transcript import AgentResult, AgentStep, agent_input_messages, partial_answer, turns_taken

__all__ = ["AgentResult", "AgentStep", "ToolCallingAgent", "agent_input_messages"]


class ToolCallingAgent(GraphAgent):
    """An agent for models with native tool calling (``bind_tools``)."""

    def __init__(
        self,
        model: Any,
        tools: Sequence[Any],
        *,
        system: str | None = None,
        max_steps: int = 10,
        parallel: bool = True,
        first_tool_choice: Any = None,
        approve: Iterable[str] = (),
        checkpointer: CheckpointSaver | None = None,
    ) -> None:
        """``first_tool_choice``: the ``tool_choice`` of the first model turn only — ``"required"``
        or a tool's name makes a model that would rather answer at once (small local models do)
        look something up first; later turns are free to answer. ``approve``: the tools that wait
        for a person's decision before they run (needs ``checkpointer``)."""
        self._build(tools, max_steps=max_steps, parallel=parallel, approve=approve, checkpointer=checkpointer)
        self.system = system
        self.model = model.bind_tools(list(self.tools.values())) if self.tools else model
        self.first_model = self.model
        if self.tools and first_tool_choice is not None:
            self.first_model = model.bind_tools(list(self.tools.values()), tool_choice=first_tool_choice)

    def _model_for(self, messages: list[BaseMessage]) -> Any:
        return self.first_model if turns_taken(messages) == 0 else self.model

    def _reply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        return [call_model(self._model_for(messages), self._with_system(messages), config)]

    async def _areply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        return [await acall_model(self._model_for(messages), self._with_system(messages), config)]

    def _finish(self, messages: list[BaseMessage], steps: list[AgentStep]) -> AgentResult:
        shown = self._with_system(messages)
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and not last.tool_calls:
            return AgentResult(last.text, shown, steps, "answer")
        return AgentResult(partial_answer(shown, self.max_steps), shown, steps, "max_steps")
