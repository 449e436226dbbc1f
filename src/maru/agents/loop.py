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
from dataclasses import replace
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
from .transcript import AgentResult, AgentStep, agent_input_messages, steps_of, turns_taken

__all__ = ["AgentState", "GraphAgent", "call_model"]

MODEL, TOOLS = "model", "tools"


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
        return {"messages": _new_ids(self._reply(state["messages"], config), state["messages"])}

    async def _amodel_update(self, state: AgentState, config: RunConfig | None) -> dict[str, Any]:
        return {"messages": _new_ids(await self._areply(state["messages"], config), state["messages"])}

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
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        out = self.graph.invoke(self._graph_input(input, config, stepping=False)[0], self._graph_config(config))
        return self._result(out)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        out = await self.graph.ainvoke(self._graph_input(input, config, stepping=False)[0], self._graph_config(config))
        return self._result(out)

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        graph_input, before = self._graph_input(input, config)
        reader = _StepReader(before)
        for chunk in self.graph.stream(graph_input, self._graph_config(config)):
            yield from reader.read(chunk)
        yield self._result(reader.state)

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        graph_input, before = self._graph_input(input, config)
        reader = _StepReader(before)
        async for chunk in self.graph.astream(graph_input, self._graph_config(config)):
            for step in reader.read(chunk):
                yield step
        yield self._result(reader.state)

    def _graph_input(self, input: Any, config: RunConfig | None, stepping: bool = True) -> tuple[Any, dict[str, Any]]:
        """What the graph is given, and the thread's state before it (read when a stream of steps
        needs it, or to check an answer): ``None`` (go on after a crash) and ``Command`` (answer a
        pause, checked against the question first) as they are; anything else as the opening
        messages of a new run."""
        if input is not None and not isinstance(input, Command):
            return {"messages": agent_input_messages(input, None)}, {}
        if not stepping and (input is None or not self.approve):
            return input, {}
        before = self._thread_state(config)
        if isinstance(input, Command):
            _check_resume(input, before)
        return input, before

    def _graph_config(self, config: RunConfig | None) -> RunConfig:
        if config is not None and "recursion_limit" in config:
            return config
        return {**(config or {}), "recursion_limit": self._recursion_limit}  # type: ignore[typeddict-item]

    def _result(self, out: dict[str, Any]) -> AgentResult:
        """The run as a result: paused with its question, or finished (answered, or out of turns)."""
        messages = list(out.get("messages", ()))
        paused = out.get(INTERRUPT_KEY)
        if paused:
            return AgentResult("", self._with_system(messages), steps_of(messages), "interrupted", paused[0].value)
        return self._finish(messages, steps_of(messages))

    def _thread_state(self, config: RunConfig | None) -> dict[str, Any]:
        """The thread as it is now, with the question it is paused on (empty without one)."""
        snapshot = self.graph.get_state(config or {}) if self.checkpointer is not None else None
        if snapshot is None:
            return {}
        return {**snapshot.values, INTERRUPT_KEY: list(snapshot.interrupts)} if snapshot.interrupts else snapshot.values


def _check_resume(command: Command, state: dict[str, Any]) -> None:
    """A wrong answer to an approval is refused before the thread stores it, so the caller can
    answer again."""
    for paused in state.get(INTERRUPT_KEY, ()):
        asked = paused.value
        if isinstance(asked, dict) and asked.get("type") == APPROVAL:
            read_decisions(command.resume, [ToolCall(c["name"], c["args"], c["id"]) for c in asked["tool_calls"]])


class _StepReader:
    """Turns the graph's states, as a ``values`` stream gives them, into the steps they add."""

    def __init__(self, before: dict[str, Any]) -> None:
        self.state = before
        self.shown = len(steps_of(before.get("messages", ())))

    def read(self, chunk: dict[str, Any]) -> list[AgentStep]:
        if INTERRUPT_KEY in chunk:  # paused: the state stays the one before, with the question
            self.state = {**self.state, **chunk}
            return []
        self.state = chunk
        steps = steps_of(chunk.get("messages", ()))
        new, self.shown = steps[self.shown :], len(steps)
        return new


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


def _new_ids(reply: list[BaseMessage], messages: list[BaseMessage]) -> list[BaseMessage]:
    """The reply, with no id the thread already has: ``add_messages`` replaces the message with
    the same id, and a provider, a cache or a restarted counter can give an id twice."""
    if all(m.id is None for m in reply):
        return reply
    taken = {m.id for m in messages}
    return [replace(m, id=None) if m.id is not None and m.id in taken else m for m in reply]


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
