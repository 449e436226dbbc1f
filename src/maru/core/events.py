"""Run events: what a step reports when someone listens, and nothing at all when no one does.

The listening state lives in one ``contextvars`` variable. Untraced, a step's whole cost for events is a
single ``ContextVar.get()`` that returns ``None``. Traced, every public call (``invoke``, ``stream`` …)
becomes a run with an id, a parent and start / end / error / stream events, delivered to every listener
installed with :func:`listen` (``astream_events`` is one such listener; the tracing subsystem is another).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .chunks import NOTHING, ChunkRecorder, add_chunks

if TYPE_CHECKING:
    from .config import RunConfig
    from .runnable import Runnable

log = logging.getLogger("maru.events")

Listener = Callable[["RunEvent"], None]


@dataclass(slots=True)
class RunEvent:
    """One thing that happened to one run.

    ``event`` is LangChain-shaped (``on_chain_start``, ``on_chat_model_stream`` …) so code written
    against ``astream_events`` reads the same; ``phase`` and ``kind`` hold its two halves.
    ``data`` holds ``input`` (start, end), ``output`` (end), ``chunk`` (stream) or ``error`` (error).
    """

    event: str
    phase: str
    kind: str
    name: str
    run_id: str
    parent_id: str | None
    trace_id: str
    parent_ids: tuple[str, ...]
    tags: list[str]
    metadata: dict[str, Any]
    data: dict[str, Any]
    time: float = field(default_factory=time.time)


@dataclass(slots=True, frozen=True)
class RunState:
    """Who listens, and which run new runs hang under."""

    listeners: tuple[Listener, ...]
    run_id: str | None = None
    trace_id: str | None = None
    parent_ids: tuple[str, ...] = ()


current_run: ContextVar[RunState | None] = ContextVar("maru_run_state", default=None)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Deliver the events of every run started inside this block to ``listener``.

    Listeners are called synchronously on the thread that runs the step; one that raises is logged and
    ignored, so observing a chain can never break it.
    """
    state = current_run.get()
    if state is None:
        new = RunState((listener,))
    else:
        new = RunState((*state.listeners, listener), state.run_id, state.trace_id, state.parent_ids)
    token = current_run.set(new)
    try:
        yield
    finally:
        current_run.reset(token)


def uuid4() -> Any:
    from uuid import uuid4 as make

    return make()


class _Run:
    """The bookkeeping of one traced call: its identity and how it reports."""

    __slots__ = ("state", "child", "kind", "name", "run_id", "tags", "metadata", "config")

    def __init__(self, runnable: Runnable, state: RunState, config: RunConfig | None) -> None:
        self.state = state
        self.kind = runnable.kind
        self.run_id = uuid4().hex
        name = None
        if config:
            name = config.get("run_name")
            if name is not None:  # run_name names this run only, not its children
                config = {k: v for k, v in config.items() if k != "run_name"}  # type: ignore[assignment]
            self.tags = list(config.get("tags", ()))
            self.metadata = dict(config.get("metadata", {}))
        else:
            self.tags, self.metadata = [], {}
        self.name = name or runnable.name
        self.config = config
        self.child = RunState(
            state.listeners, self.run_id, state.trace_id or self.run_id, (*state.parent_ids, self.run_id)
        )

    def emit(self, phase: str, data: dict[str, Any]) -> None:
        event = RunEvent(
            event=f"on_{self.kind}_{phase}",
            phase=phase,
            kind=self.kind,
            name=self.name,
            run_id=self.run_id,
            parent_id=self.state.run_id,
            trace_id=self.child.trace_id or self.run_id,
            parent_ids=self.state.parent_ids,
            tags=self.tags,
            metadata=self.metadata,
            data=data,
        )
        for listener in self.state.listeners:
            try:
                listener(event)
            except Exception:  # an observer must never break the observed chain
                log.exception("run event listener %r failed", listener)


def traced_call(
    runnable: Runnable, state: RunState, fn: Callable[..., Any], input: Any, config: Any, kwargs: dict
) -> Any:
    run = _Run(runnable, state, config)
    run.emit("start", {"input": input})
    token = current_run.set(run.child)
    try:
        output = fn(input, run.config, **kwargs)
    except BaseException as exc:
        run.emit("error", {"input": input, "error": exc})
        raise
    finally:
        current_run.reset(token)
    run.emit("end", {"input": input, "output": output})
    return output


async def traced_acall(
    runnable: Runnable, state: RunState, fn: Callable[..., Any], input: Any, config: Any, kwargs: dict
) -> Any:
    run = _Run(runnable, state, config)
    run.emit("start", {"input": input})
    token = current_run.set(run.child)
    try:
        output = await fn(input, run.config, **kwargs)
    except BaseException as exc:
        run.emit("error", {"input": input, "error": exc})
        raise
    finally:
        current_run.reset(token)
    run.emit("end", {"input": input, "output": output})
    return output


def traced_iter(
    runnable: Runnable, state: RunState, fn: Callable[..., Iterator[Any]], input: Any, config: Any, kwargs: dict
) -> Iterator[Any]:
    """Trace a stream. The child state is set only while the inner generator runs, so it never
    leaks into the consumer's code between chunks."""
    run = _Run(runnable, state, config)
    recorder = input if isinstance(input, ChunkRecorder) else None
    run.emit("start", {"input": None if recorder else input})
    output: Any = NOTHING
    token = current_run.set(run.child)
    try:
        iterator = iter(fn(input, run.config, **kwargs))
    finally:
        current_run.reset(token)
    try:
        while True:
            token = current_run.set(run.child)
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            finally:
                current_run.reset(token)
            run.emit("stream", {"chunk": chunk})
            output = add_chunks(output, chunk)
            yield chunk
    except BaseException as exc:
        run.emit("error", {"input": input, "error": exc})
        raise
    if recorder is not None:
        input = recorder.value
    run.emit("end", {"input": input, "output": None if output is NOTHING else output})


async def traced_aiter(
    runnable: Runnable,
    state: RunState,
    fn: Callable[..., AsyncIterator[Any]],
    input: Any,
    config: Any,
    kwargs: dict,
) -> AsyncIterator[Any]:
    run = _Run(runnable, state, config)
    recorder = input if isinstance(input, ChunkRecorder) else None
    run.emit("start", {"input": None if recorder else input})
    output: Any = NOTHING
    token = current_run.set(run.child)
    try:
        iterator = fn(input, run.config, **kwargs).__aiter__()
    finally:
        current_run.reset(token)
    try:
        while True:
            token = current_run.set(run.child)
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            finally:
                current_run.reset(token)
            run.emit("stream", {"chunk": chunk})
            output = add_chunks(output, chunk)
            yield chunk
    except BaseException as exc:
        run.emit("error", {"input": input, "error": exc})
        raise
    if recorder is not None:
        input = recorder.value
    run.emit("end", {"input": input, "output": None if output is NOTHING else output})
