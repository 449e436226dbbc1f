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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from .agent import (
    AgentResult,
    AgentStep,
    _tools_by_name,
    _unknown_tool,
    agent_input_messages,
    final_result,
    partial_answer,
)

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


class ReActAgent(Runnable[Any, AgentResult]):
    """A text agent: works with any chat model, no native tool calling needed."""

    io_bound = True

    def __init__(self, model: Any, tools: Sequence[Any], *, max_steps: int = 10, system: str | None = None) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.model = model
        self.tools = _tools_by_name(tools)
        described = "\n".join(
            f"- {t.name}: {t.description} Arguments (JSON schema): {json.dumps(t.args, ensure_ascii=False)}"
            for t in self.tools.values()
        )
        self.system = (system + "\n\n" if system else "") + _SYSTEM.format(
            tools=described, names=", ".join(self.tools)
        )
        self.max_steps = max_steps

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        opening = agent_input_messages(input, None)
        messages: list[Any] = [SystemMessage(self.system), *opening]
        transcript = ""
        steps: list[AgentStep] = []
        for step in range(1, self.max_steps + 1):
            prompt = messages if not transcript else [*messages, AIMessage(transcript), HumanMessage("Continue.")]
            reply = self.model.invoke(prompt, config, stop=["\nObservation:"])
            text = reply.text
            steps.append(AgentStep("model", step, reply))
            yield steps[-1]
            try:
                parsed = parse_react(text)
            except ReActParseError as exc:
                observation = ToolMessage(f"Format error: {exc}", tool_call_id=f"react-{step}", status="error")
                steps.append(AgentStep("tool", step, observation))
                yield steps[-1]
                transcript += f"{text.rstrip()}\nObservation: {observation.content}\n"
                continue
            if parsed.final is not None:
                full = [*messages, AIMessage(transcript + text)]
                yield AgentResult(parsed.final, full, steps, "answer")
                return
            assert parsed.action is not None
            call = ToolCall(name=parsed.action, args=parsed.action_input, id=f"react-{step}")
            chosen = self.tools.get(call.name)
            result = _unknown_tool(call, self.tools) if chosen is None else chosen.run_call(call, config)
            steps.append(AgentStep("tool", step, result, call))
            yield steps[-1]
            transcript += f"{text.rstrip()}\nObservation: {result.content}\n"
        said = [*messages, *(s.message for s in steps if s.kind == "tool")]
        output = partial_answer(said, self.max_steps)
        yield AgentResult(output, [*messages, AIMessage(transcript)], steps, "max_steps")

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AgentResult:
        return final_result(self._stream(input, config))
