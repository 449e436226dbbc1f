"""The ReAct text agent, for models without native tool calling.

The model writes ``Thought:`` / ``Action:`` / ``Action Input:`` lines, the agent runs the tool and
adds an ``Observation:``, until the model writes ``Final Answer:``. Models slip on the format, so the
parser is forgiving — any case, markdown bold, ``Action: tool(args)`` in one line, JSON or plain
text input, code fences, a missing input for a tool without parameters — and when it cannot read a
reply it tells the model what was wrong as the observation instead of failing the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.config import RunConfig
from ..graph.checkpoint import CheckpointSaver
from ..messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from .loop import GraphAgent, acall_model, call_model
from .transcript import AgentResult, AgentStep, partial_answer, this_run, turns_taken

__all__ = ["ReActAgent", "ReActParseError", "parse_react"]

_SYSTEM = """Answer the question as well as you can. You have these tools:

{tools}

Use this format:

Thought: what you think about next
Action: the tool to use, one of [{names}]
Action Input: the tool's arguments as JSON
Observation: the tool's result (written for you; do not write it yourself)
... (Thought / Action / Action Input / Observation can repeat)
Thought: I know the final answer
Final Answer: the answer to the question"""


class ReActParseError(ValueError):
    """A reply that has neither a usable action nor a final answer."""


@dataclass(slots=True)
class ReActStep:
    thought: str
    action: str | None
    action_input: Any
    final: str | None


_LABEL = r"(?:\*\*)?\s*{name}\s*(?:\*\*)?\s*:\s*(?:\*\*)?"
_FINAL = re.compile(_LABEL.format(name=r"final\s*answer"), re.IGNORECASE)
_ACTION = re.compile(_LABEL.format(name=r"action") + r"(?!\s*input)", re.IGNORECASE)
_INPUT = re.compile(_LABEL.format(name=r"action\s*input"), re.IGNORECASE)
_OBSERVATION = re.compile(r"^\s*observation\s*:", re.IGNORECASE | re.MULTILINE)
_THOUGHT = re.compile(_LABEL.format(name="thought"), re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_react(text: str) -> ReActStep:
    """Read one ReAct reply. An action wins over a final answer written after it (the model ran
    ahead); a final answer before any action ends the run."""
    # Anything from a self-written "Observation:" on is the model imagining the tool's answer.
    obs = _OBSERVATION.search(text)
    if obs:
        text = text[: obs.start()]
    thought_match = _THOUGHT.search(text)
    action = _ACTION.search(text)
    final = _FINAL.search(text)
    thought = ""
    if thought_match:
        end = min(m.start() for m in (action, final) if m) if (action or final) else len(text)
        thought = text[thought_match.end():end].strip()
    if final and (not action or final.start() < action.start()):
        return ReActStep(thought, None, None, text[final.end():].strip())
    if not action:
        raise ReActParseError(
            "Could not find 'Action:' or 'Final Answer:'. Reply with 'Action: <tool>' and "
            "'Action Input: <JSON>', or with 'Final Answer: <answer>'."
        )
    after = text[action.end():]
    input_match = _INPUT.search(after)
    name_part = after[: input_match.start()] if input_match else after.split("\n", 1)[0]
    name = name_part.strip().strip("`*").strip()
    raw_input: str | None = None
    call = re.fullmatch(r"([\w.-]+)\s*\((.*)\)\s*", name, re.DOTALL)
    if call:  # "Action: search(Seoul)" in one line
        name, raw_input = call.group(1), call.group(2)
    if input_match:
        raw_input = after[input_match.end():]
        raw_input = _FENCE.sub("", raw_input.strip())
        if final and final.start() > action.start():
            cut = _FINAL.search(raw_input)
            raw_input = raw_input[: cut.start()] if cut else raw_input
    name = name.split()[0] if name else ""
    if not name:
        raise ReActParseError("'Action:' names no tool. Write the tool's name after 'Action:'.")
    return ReActStep(thought, name, _parse_input(raw_input), None)


def _parse_input(raw: str | None) -> Any:
    if raw is None:
        return {}
    raw = raw.strip()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    first_line = raw.split("\n", 1)[0].strip()
    try:
        return json.loads(first_line)
    except json.JSONDecodeError:
        return first_line.strip("\"'")


class ReActAgent(GraphAgent):
    """A text agent: works with any chat model, no native tool calling needed.

    It runs on the same graph as :class:`~maru.agents.ToolCallingAgent` (checkpoints, approval,
    the loop guard): each parsed action is kept as the tool call of the model's message, and its
    observation as a tool message, so the thread holds the run and the transcript is rebuilt
    from it for every turn."""

    _STOP = ["\nObservation:"]
    system: str  # the ReAct instructions, with the caller's system prompt before them

    def __init__(
        self,
        model: Any,
        tools: Sequence[Any],
        *,
        max_steps: int = 10,
        system: str | None = None,
        approve: Iterable[str] = (),
        checkpointer: CheckpointSaver | None = None,
    ) -> None:
        self._build(tools, max_steps=max_steps, parallel=False, approve=approve, checkpointer=checkpointer)
        self.model = model
        described = "\n".join(
            f"- {t.name}: {t.description} Arguments (JSON schema): {json.dumps(t.args, ensure_ascii=False)}"
            for t in self.tools.values()
        )
        self.system = (system + "\n\n" if system else "") + _SYSTEM.format(
            tools=described, names=", ".join(self.tools)
        )

    def _prompt(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """The opening messages, then the run so far as one transcript the model continues."""
        opening, transcript = _split(messages)
        prompt: list[BaseMessage] = [SystemMessage(self.system), *opening]
        return [*prompt, AIMessage(transcript), HumanMessage("Continue.")] if transcript else prompt

    def _reply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        reply = call_model(self.model, self._prompt(messages), config, stop=self._STOP)
        return _read_reply(reply, turns_taken(messages) + 1)

    async def _areply(self, messages: list[BaseMessage], config: RunConfig | None) -> list[BaseMessage]:
        reply = await acall_model(self.model, self._prompt(messages), config, stop=self._STOP)
        return _read_reply(reply, turns_taken(messages) + 1)

    def _finish(self, messages: list[BaseMessage], steps: list[AgentStep]) -> AgentResult:
        opening, transcript = _split(messages)
        shown: list[BaseMessage] = [SystemMessage(self.system), *opening]
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and not last.tool_calls:
            final = parse_react(last.text).final or ""
            return AgentResult(final, [*shown, AIMessage(transcript + last.text)], steps, "answer")
        said = [*shown, *(m for m in this_run(messages) if isinstance(m, ToolMessage))]
        return AgentResult(partial_answer(said, self.max_steps), [*shown, AIMessage(transcript)], steps, "max_steps")


def _read_reply(reply: AIMessage, turn: int) -> list[BaseMessage]:
    """The model's reply as the graph keeps it: with its action as a tool call; a final answer
    as it is; a reply that cannot be read with the format error as its observation."""
    try:
        parsed = parse_react(reply.text)
    except ReActParseError as exc:
        return [reply, ToolMessage(f"Format error: {exc}", tool_call_id=f"react-{turn}", status="error")]
    if parsed.final is not None:
        return [replace(reply, tool_calls=[])]
    assert parsed.action is not None
    return [replace(reply, tool_calls=[ToolCall(name=parsed.action, args=parsed.action_input, id=f"react-{turn}")])]


def _split(messages: list[BaseMessage]) -> tuple[list[BaseMessage], str]:
    """The messages before the run, and the run as ReAct text: each reply and its observation."""
    run = this_run(messages)
    transcript, said = "", None
    for message in run:
        if isinstance(message, AIMessage):
            said = message.text.rstrip()
        elif isinstance(message, ToolMessage) and said is not None:
            transcript += f"{said}\nObservation: {message.content}\n"
            said = None
    return list(messages[: len(messages) - len(run)]), transcript
