"""What a node of a checkpointed thread can ask of it: to pause for a person (``interrupt``), and a
key for its side effects that survives a crash (``idempotency_key``).

Human in the loop: a node pauses with ``interrupt(payload)`` and the thread waits for an answer.

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

from ..errors import MaruError
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


class GraphInterrupt(MaruError):  # noqa: N818 - LangGraph's name, so code written for it reads the same
    """Raised by :func:`interrupt` to pause the node. A graph with a checkpointer catches it and
    pauses the thread; one without passes it up (to the graph it is a node of, or to the caller).
    Not a ``ValueError``, so a node's ``except ValueError`` does not swallow the pause."""

    def __init__(self, value: Any) -> None:
        super().__init__(
            f"a node called interrupt({value!r:.80}) in a graph without a checkpointer; "
            "compile(checkpointer=InMemorySaver()) (or SQLiteSaver) so the thread can pause and resume"
        )
        self.value = value


@dataclass(slots=True)
class Task:
    """The node running now in a checkpointed thread: where it runs (thread, step, node) and the
    answers it has been given, with how many of its ``interrupt`` calls used one."""

    thread_id: str
    step: int
    node: str
    answers: list[Any]
    used: int = 0


_task: ContextVar[Task | None] = ContextVar("maru_graph_task", default=None)


def interrupt(value: Any) -> Any:
    """Pause the running node with ``value`` for a person (or program) to answer; once resumed,
    return the answer. See the module's description for when code around it runs again."""
    task = _task.get()
    if task is not None and task.used < len(task.answers):
        task.used += 1
        return task.answers[task.used - 1]
    raise GraphInterrupt(value)


def idempotency_key(call: str = "") -> str:
    """A key for a side effect of the running node: the same every time this node runs again for
    the same step of the same thread (after a crash, or when it resumes from an interrupt), and
    different in any other step. Give it to the outside system (a payment, an email, a ticket) so
    that it does the thing once; ``call`` tells apart several effects of one node."""
    task = _task.get()
    if task is None:
        raise GraphError(
            "idempotency_key() names a side effect of a node in a graph with a checkpointer; call it "
            "inside such a node (compile(checkpointer=...), config={'configurable': {'thread_id': ...}})"
        )
    key = f"{task.thread_id}:{task.step}:{task.node}"
    return f"{key}:{call}" if call else key


def run_as(task: Task, call: Any, *args: Any) -> Any:
    """``call(*args)`` as ``task``: its ``interrupt`` and ``idempotency_key`` calls see it."""
    token = _task.set(task)
    try:
        return call(*args)
    finally:
        _task.reset(token)


async def arun_as(task: Task, call: Any, *args: Any) -> Any:
    token = _task.set(task)
    try:
        return await call(*args)
    finally:
        _task.reset(token)
