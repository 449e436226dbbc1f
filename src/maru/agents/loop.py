"""The graph both agents run on, and what they share around it.

    START → model ─(tool calls)→ tools ─(turns left)→ model … → END

The state is the conversation (``messages``, merged with ``add_messages``) and nothing else. The
``model`` node asks the agent for its next message(s); the ``tools`` node runs the calls of the
last one (:mod:`maru.agents.toolstep`). The run ends when the model answers without a tool call,
or after ``max_steps`` model turns. Compiled with a checkpointer, the thread is saved after every
step and a run can be resumed (``invoke(None, thread)`` after a crash, ``invoke(Command(resume=…),
thread)`` after an approval); the agent's system prompt is added when the model is called, not
stored, so a thread holds only what was said.

An agent is a runnable over this graph: ``invoke`` gives an :class:`AgentResult`; ``stream`` gives
an :class:`AgentStep` per model turn and per tool result as they happen, then the result. The
compiled graph is ``agent.graph``: ``agent.graph.stream({"messages": [...]}, stream_mode="messages")``
gives the model's tokens as they come.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any, TypedDict

from ..core.chunks import agather, gather
from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import ConfigurationError
from ..graph import END, START, Command, StateGraph, add_messages
from ..graph.checkpoint import CheckpointSaver
from ..graph.interrupts import INTERRUPT_KEY
from ..graph.live import tokens_wanted
from ..messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolCall, ToolMessage
from .approval import APPROVAL, read_decisions
from .toolstep import ToolStep, tools_by_name
from .transcript import (
    AgentResult,
    AgentStep,
    agent_input_messages,
    final_result,
    this_run,
    turns_taken,
)

__all__ = ["AgentState", "GraphAgent", "call_model"]

MODEL, TOOLS = "model", "tools"
_MODES = ["values", "updates"]


class AgentState(TypedDict, total=False):
    """An agent's thread: the conversation."""

    messages: Annotated[list[BaseMessage], add_messages]


class GraphAgent(Runnable[Any, AgentResult]):
    """The loop of :class:`~maru.agents.ToolCallingAgent` and :class:`~maru.agents.ReActAgent`. A
    subclass says what the model node adds (``_reply`` / ``_areply``) and how a finished run
    reads as a result (``_finish``)."""

    io_bound = True
    system: str | None = None

    def _build(
        self, tools: Sequence[Any], *, max_steps: int, parallel: bool, approve: Iterable[str],
        checkpointer: CheckpointSaver | None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.tools = tools_by_name(tools)
        self.max_steps, self.parallel, self.checkpointer = max_steps, parallel, checkpointer
        self.approve = _approvals(approve, self.tools, checkpointer)
        step = ToolStep(self.tools, self.approve, parallel, checkpointer)
        graph = StateGraph(AgentState)
        graph.add_node(MODEL, _Node(MODEL, self._model_update, self._amodel_update))
        graph.add_node(TOOLS, _Node(TOOLS, step.run, step.arun))
        graph.add_edge(START, MODEL)
        graph.add_conditional_edges(MODEL, self._after_model, [TOOLS, MODEL, END])
        graph.add_conditional_edges(TOOLS, self._after_tools, [MODEL, END])
        self.graph = graph.compile(checkpointer, name=f"{type(self).__name__}Graph")
        self._recursion_limit = 2 * max_steps + 1

    # ------------------------------------------------------------ for subclasses
    def _reply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        raise NotImplementedError

    async def _areply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        raise NotImplementedError

    def _finish(self, messages: list[BaseMessage], steps: list[AgentStep]) -> AgentResult:
        raise NotImplementedError

    def _with_system(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """The messages as the model sees them: the system prompt first, unless they bring one."""
        if self.system and not (messages and isinstance(messages[0], SystemMessage)):
            return [SystemMessage(self.system), *messages]
        return messages

    # ------------------------------------------------------------ the graph's nodes and edges
    def _model_update(self, state: AgentState, config: RunConfig | None) -> dict[str, Any]:
        return {"messages": self._reply(state["messages"], config)}

    async def _amodel_update(self, state: AgentState, config: RunConfig | None) -> dict[str, Any]:
        return {"messages": await self._areply(state["messages"], config)}

    def _after_model(self, state: AgentState) -> str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return TOOLS
        if isinstance(last, ToolMessage):  # the agent answered the reply itself (a format error)
            return self._after_tools(state)
        return END

    def _after_tools(self, state: AgentState) -> str:
        return MODEL if turns_taken(state["messages"]) < self.max_steps else END

    # ------------------------------------------------------------ running
    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        reader = _StepReader()
        for item in self.graph.stream(self._graph_input(input, config), self._graph_config(config), stream_mode=_MODES):
            yield from reader.read(item)
        yield self._close(reader, config)

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        return final_result(self._stream(input, config))

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        reader = _StepReader()
        async for item in self.graph.astream(
            self._graph_input(input, config), self._graph_config(config), stream_mode=_MODES
        ):
            for step in reader.read(item):
                yield step
        yield self._close(reader, config)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        result = None
        async for item in self._astream(input, config):
            result = item
        assert isinstance(result, AgentResult)
        return result

    def _graph_input(self, input: Any, config: RunConfig | None) -> Any:
        """``None`` (go on after a crash) and ``Command`` (answer a pause) as they are, the
        resume checked against the pause first; anything else as the run's opening messages."""
        if input is None:
            return None
        if isinstance(input, Command):
            self._check_resume(input, config)
            return input
        return {"messages": agent_input_messages(input, None)}

    def _check_resume(self, command: Command, config: RunConfig | None) -> None:
        """A wrong answer to an approval is refused here, before the thread stores it, so the
        caller can answer again."""
        if self.checkpointer is None or not self.approve:
            return  # the graph says what is wrong
        snapshot = self.graph.get_state(config or {})
        for paused in snapshot.interrupts if snapshot is not None else ():
            asked = paused.value
            if isinstance(asked, dict) and asked.get("type") == APPROVAL:
                read_decisions(command.resume, [ToolCall(c["name"], c["args"], c["id"]) for c in asked["tool_calls"]])

    def _graph_config(self, config: RunConfig | None) -> RunConfig:
        if config is not None and "recursion_limit" in config:
            return config
        return {**(config or {}), "recursion_limit": self._recursion_limit}  # type: ignore[typeddict-item]

    def _close(self, reader: _StepReader, config: RunConfig | None) -> AgentResult:
        state = reader.state if reader.state is not None else self._thread_state(config)
        messages = list(state.get("messages", ()))
        if reader.interrupt is not None:
            return AgentResult("", self._with_system(messages), reader.steps, "interrupted", reader.interrupt)
        return self._finish(messages, reader.steps)

    def _thread_state(self, config: RunConfig | None) -> dict[str, Any]:
        """The thread as it is, for a call that ran no step (resumed with nothing left to do)."""
        snapshot = self.graph.get_state(config or {}) if self.checkpointer is not None else None
        return {} if snapshot is None else snapshot.values


class _StepReader:
    """Turns the graph's ``values`` and ``updates`` chunks into agent steps."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.steps: list[AgentStep] = []
        self.interrupt: dict[str, Any] | None = None

    def read(self, item: Any) -> list[AgentStep]:
        """The steps in one ``(mode, chunk)`` of the graph's stream."""
        mode, chunk = item
        if INTERRUPT_KEY in chunk:
            self.interrupt = chunk[INTERRUPT_KEY][0].value
            return []
        if mode == "values":
            self.state = chunk
            return []
        messages = self.state["messages"] if self.state is not None else []
        turn = turns_taken(messages)
        new: list[AgentStep] = []
        for node, update in chunk.items():
            for message in (update or {}).get("messages", ()):
                if isinstance(message, ToolMessage):
                    new.append(AgentStep("tool", turn, message, _call_of(message, messages)))
                elif node == MODEL:  # the tools node re-sends the model's message when a person edits a call
                    new.append(AgentStep("model", turn, message))
        self.steps.extend(new)
        return new


def _call_of(result: ToolMessage, messages: Sequence[BaseMessage]) -> ToolCall | None:
    for message in reversed(this_run(messages)):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.id == result.tool_call_id:
                    return call
    return None


class _Node(Runnable[Any, Any]):
    """A node of the agent's graph: a sync and an async function of the state and config."""

    io_bound = True

    def __init__(
        self, name: str, sync: Callable[[Any, RunConfig | None], Any],
        async_: Callable[[Any, RunConfig | None], Awaitable[Any]],
    ) -> None:
        self._name, self._sync, self._async = name, sync, async_

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self._sync(input, config)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return await self._async(input, config)


def call_model(model: Any, messages: list[BaseMessage], config: RunConfig | None, **kwargs: Any) -> AIMessage:
    """The model's reply: streamed when a ``"messages"`` stream reads the graph (its tokens reach
    the reader as they come), invoked otherwise."""
    if tokens_wanted():
        return _whole(gather(model.stream(messages, config, **kwargs)))
    reply: AIMessage = model.invoke(messages, config, **kwargs)
    return reply


async def acall_model(model: Any, messages: list[BaseMessage], config: RunConfig | None, **kwargs: Any) -> AIMessage:
    if tokens_wanted():
        return _whole(await agather(model.astream(messages, config, **kwargs)))
    reply: AIMessage = await model.ainvoke(messages, config, **kwargs)
    return reply


def _whole(gathered: Any) -> AIMessage:
    if isinstance(gathered, AIMessageChunk):
        return gathered.to_message()
    if isinstance(gathered, AIMessage):
        return gathered
    return AIMessage(str(gathered or ""))


def _approvals(approve: Iterable[str], tools: dict[str, Any], checkpointer: CheckpointSaver | None) -> frozenset[str]:
    names = frozenset([approve] if isinstance(approve, str) else approve)
    unknown = sorted(names - tools.keys())
    if unknown:
        raise ConfigurationError(
            f"approve= names {unknown}, which are not tools of this agent; its tools are {sorted(tools)}"
        )
    if names and checkpointer is None:
        raise ConfigurationError(
            "approve= pauses the run before those tools until someone answers, and a paused run "
            "waits in a checkpointer: pass checkpointer=InMemorySaver() (or SQLiteSaver(path)) and "
            "call with config={'configurable': {'thread_id': '<id>'}}"
        )
    return names
