"""Human in the loop: a node pauses with ``interrupt(payload)`` and the thread waits for an answer.

    def review(state):
        answer = interrupt({"draft": state["draft"]})   # pauses here the first time
        return {"approved": answer == "yes"}

    out = app.invoke(input, thread)          # out["__interrupt__"] holds Interrupt(value=…, node="review")
    app.invoke(Command(resume="yes"), thread)  # review runs again; interrupt() now returns "yes"

A paused node runs again from its start when the thread resumes, so the code before ``interrupt``
runs twice: keep side effects after it (or make them idempotent). Its n-th ``interrupt`` call
returns the n-th answer given; one without an answer pauses the thread again. Nodes of the same
step that finished keep their updates (they do not run again). Pausing needs a checkpointer,
which is where the paused thread waits.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .errors import GraphError

INTERRUPT_KEY = "__interrupt__"
"""The key of a paused run's output that lists its interrupts."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """What a paused node asked (``value``), and which node asked."""

    value: Any
    node: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    """Resume a paused thread: ``invoke(Command(resume=answer), thread)``. With several paused
    nodes, ``resume`` is a dict of answers by node name."""

    resume: Any = None


class GraphInterrupt(GraphError):  # noqa: N818 - LangGraph's name, so code written for it reads the same
    """Raised by :func:`interrupt` to pause the node. A graph with a checkpointer catches it and
    pauses the thread; one without passes it up (to the graph it is a node of, or to the caller)."""

    def __init__(self, value: Any) -> None:
        super().__init__(
            f"a node called interrupt({value!r:.80}) in a graph without a checkpointer; "
            "compile(checkpointer=InMemorySaver()) (or SQLiteSaver) so the thread can pause and resume"
        )
        self.value = value


class _Answers:
    """The answers a resumed node has been given, and how many of its ``interrupt`` calls used one."""

    __slots__ = ("used", "values")

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.used = 0


_answers: ContextVar[_Answers | None] = ContextVar("maru_graph_answers", default=None)


def interrupt(value: Any) -> Any:
    """Pause the running node with ``value`` for a person (or program) to answer; once resumed,
    return the answer. See the module's description for when code around it runs again."""
    answers = _answers.get()
    if answers is not None and answers.used < len(answers.values):
        answers.used += 1
        return answers.values[answers.used - 1]
    raise GraphInterrupt(value)


def call_with_answers(answers: list[Any] | None, call: Any, *args: Any) -> Any:
    """``call(*args)`` with ``answers`` available to the ``interrupt`` calls it makes."""
    if not answers:
        return call(*args)
    token = _answers.set(_Answers(answers))
    try:
        return call(*args)
    finally:
        _answers.reset(token)


async def acall_with_answers(answers: list[Any] | None, call: Any, *args: Any) -> Any:
    if not answers:
        return await call(*args)
    token = _answers.set(_Answers(answers))
    try:
        return await call(*args)
    finally:
        _answers.reset(token)
