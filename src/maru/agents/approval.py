"""Human approval of tool calls: the question an agent pauses with, and the answers it takes.

An agent built with ``approve=["delete_file", ...]`` pauses (``maru.graph.interrupt``) before it
runs any of those tools, with this payload::

    {"type": "tool_approval", "tool_calls": [{"id": "call_1", "name": "delete_file", "args": {...}}]}

It is resumed with ``Command(resume=answer)``, where the answer is one decision for every call, or
a dict of decisions keyed by call id (one for each call of the payload):

- ``{"action": "approve"}`` runs the call as the model asked;
- ``{"action": "edit", "args": {...}}`` runs it with these arguments instead (the model's message
  is changed to match, so the transcript says what ran);
- ``{"action": "reject", "message": "..."}`` does not run it; the model gets an error tool
  message with the text, and goes on from there.

Anything else is an :class:`ApprovalError` before the thread is touched, so a wrong answer can be
corrected by resuming again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import MaruError
from ..messages import ToolCall, ToolMessage

__all__ = ["APPROVAL", "ApprovalError", "Decision", "approval_request", "read_decisions"]

APPROVAL = "tool_approval"
"""The ``type`` of an approval payload."""
_ACTIONS = {"approve": set(), "edit": {"args"}, "reject": {"message"}}
_DEFAULT_REJECTION = "A person reviewing this call rejected it."


class ApprovalError(MaruError, ValueError):
    """A resume value that is not a decision (or a dict of decisions) for the paused tool calls."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What a person decided about one tool call."""

    action: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    message: str = _DEFAULT_REJECTION

    def apply(self, call: ToolCall) -> ToolCall | ToolMessage:
        """The call to run (as asked, or with the edited arguments), or the rejection to report."""
        if self.action == "reject":
            return ToolMessage(
                f"Not run: {self.message}", tool_call_id=call.id, name=call.name, status="error"
            )
        if self.action == "edit":
            return ToolCall(name=call.name, args=dict(self.args or {}), id=call.id)
        return call


def approval_request(calls: Sequence[ToolCall]) -> dict[str, Any]:
    """The payload an agent pauses with."""
    return {"type": APPROVAL, "tool_calls": [{"id": c.id, "name": c.name, "args": c.args} for c in calls]}


def read_decisions(value: Any, calls: Sequence[ToolCall]) -> dict[str, Decision]:
    """``value`` (one decision, or decisions by call id) as a decision for each of ``calls``."""
    ids = [c.id for c in calls]
    if isinstance(value, dict) and "action" in value:
        decision = _decision(value, "the decision")
        return dict.fromkeys(ids, decision)
    if not isinstance(value, dict) or not value:
        raise ApprovalError(_expected(ids, f"got {value!r:.120}"))
    missing = [i for i in ids if i not in value]
    unknown = [k for k in value if k not in ids]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"no decision for {missing}")
        if unknown:
            problems.append(f"{unknown} are not among the paused calls")
        raise ApprovalError(_expected(ids, "; ".join(problems)))
    return {i: _decision(value[i], f"the decision for {i!r}") for i in ids}


def _decision(value: Any, what: str) -> Decision:
    if not isinstance(value, dict) or value.get("action") not in _ACTIONS:
        raise ApprovalError(
            f"{what} is {value!r:.120}; a decision is {{'action': 'approve'}}, "
            "{'action': 'edit', 'args': {...}} or {'action': 'reject', 'message': '...'}"
        )
    action = value["action"]
    extra = set(value) - {"action"} - _ACTIONS[action]
    if extra:
        raise ApprovalError(f"{what} ({action}) has unexpected keys {sorted(extra)}; {_shape(action)}")
    if action == "edit":
        if not isinstance(value.get("args"), dict):
            raise ApprovalError(f"{what} edits the call but its 'args' is {value.get('args')!r:.80}; {_shape(action)}")
        return Decision("edit", args=value["args"])
    if action == "reject":
        message = value.get("message", _DEFAULT_REJECTION)
        if not isinstance(message, str):
            raise ApprovalError(f"{what} rejects the call but its 'message' is {message!r:.80}; {_shape(action)}")
        return Decision("reject", message=message.strip() or _DEFAULT_REJECTION)
    return Decision("approve")


def _shape(action: str) -> str:
    return {
        "approve": "approve as {'action': 'approve'}",
        "edit": "edit as {'action': 'edit', 'args': {<the arguments to run with>}}",
        "reject": "reject as {'action': 'reject', 'message': '<why, for the model>'}",
    }[action]


def _expected(ids: list[str], problem: str) -> str:
    return (
        f"resume an approval with one decision for all calls ({{'action': 'approve'}}, 'edit' with "
        f"'args', or 'reject' with 'message'), or a dict of decisions keyed by call id {ids}: {problem}"
    )
