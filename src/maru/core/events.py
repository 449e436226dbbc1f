"""Run events and run records: what a step reports when someone listens, and nothing when no one does.

The observing state lives in one ``contextvars`` variable (plus a process-wide default that
``maru.tracing.enable`` sets). Untraced, a step's whole cost for this is a ``ContextVar.get()`` and a
module-attribute read that both give ``None``.

Traced, every public call (``invoke``, ``stream`` …) becomes a run, and two kinds of observers may
watch:

- **listeners** (``listen(callback)``, ``astream_events``) get a :class:`RunEvent` at each start,
  stream chunk, end and error, as it happens;
- a **collector** (the tracer) gets, when a trace's root run ends, the raw records of every run in
  it. A record is a plain tuple built on the hot path; names, ids, JSON and redaction are worked out
  later, off the caller's thread. That keeps tracing within a few times the untraced cost.

The state is a plain tuple, typed as :data:`State` and read through the index names
:data:`LISTENERS` … :data:`RECORDS`: a tuple display costs a fraction of an object's or a
``NamedTuple``'s construction, and one is built per traced run. Run ids are process-local integers;
:func:`run_id_str` turns one into the globally unique string that events and stores show.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

from .chunks import NOTHING, ChunkRecorder, add_chunks
from .closing import aclose_stream, close_stream

if TYPE_CHECKING:
    from .runnable import Runnable

log = logging.getLogger("maru.events")

Listener = Callable[["RunEvent"], None]

RunRecord: TypeAlias = tuple[
    int, int | None, int, "Runnable[Any, Any]", str | None, Any, Any, Any, BaseException | None, float, float
]
"""``(run_id, parent_id, trace_id, runnable, run_name, config, input, output, error, t_start,
t_end)`` with ids as ints and times from ``time.perf_counter()`` (see :func:`wall_time`). Built on the
hot path as a tuple display and read by unpacking, never by index."""

SequenceRecord: TypeAlias = list[Any]
"""A whole sequence and its steps in one record, from the sequence's lean traced path:
``[seq_id, parent_id, trace_id, sequence, config, error, input, t_start]`` followed by
``run_id, output, t_end`` for each step that ran. Step *i* is ``sequence.steps[i]``; its input is the
previous step's output and it started when the previous one ended. When ``error`` is set, the last
step that ran raised it (its output is ``None``), and so did the sequence.

One list instead of a tuple per run: a busy traced loop keeps its traces alive until the tracer
takes them, and the garbage collector's share of the hot path grows with the objects (and
references) each trace leaves behind."""

SEQ_ERROR: Final = 5
"""Where a :data:`SequenceRecord` holds the error."""
SEQ_HEAD: Final = 8
"""How many fields a :data:`SequenceRecord` holds before its steps'."""
SEQ_STEP: Final = 3
"""How many fields each step that ran adds to a :data:`SequenceRecord`: ``run_id, output, t_end``."""

TraceRecords: TypeAlias = list[RunRecord | SequenceRecord]
"""The records of one trace, children before parents, the root last."""


class Collector(Protocol):
    def submit(self, records: TraceRecords) -> None:
        """Take the records of one finished trace (children before parents, the root last): run
        records and sequence records."""


RunState: TypeAlias = tuple[tuple[Listener, ...], Collector | None, int, int, tuple[int, ...], TraceRecords | None]
"""The state while a run runs: the runs started under it are its children."""
OuterState: TypeAlias = tuple[tuple[Listener, ...], Collector | None, None, None, tuple[()], None]
"""The state outside every run (what ``listen``, ``tracing`` and ``enable`` set): a run started under
it is the root of a new trace."""
State: TypeAlias = RunState | OuterState
"""What a run observes. Its fields are read through the index names below (by unpacking on the hot
path)."""
LISTENERS: Final = 0
"""The event listeners, outermost first (empty when only a collector watches)."""
COLLECTOR: Final = 1
"""Where the trace's records go when its root run ends (``None``: events only)."""
RUN_ID: Final = 2
"""The run this state belongs to, the parent of the runs started under it (``None`` above a root)."""
TRACE_ID: Final = 3
"""The root run's id (``None`` above a root)."""
PARENT_IDS: Final = 4
"""The ids from the root down to ``RUN_ID`` included, kept only while listeners watch (for events)."""
RECORDS: Final = 5
"""The trace's records so far, or ``None`` when nothing collects them."""


def root_state(collector: Collector | None, listeners: tuple[Listener, ...] = ()) -> OuterState:
    """The state above a trace's root run: every call made under it starts a new trace."""
    return (listeners, collector, None, None, (), None)


current_run: ContextVar[State | None] = ContextVar("maru_run_state", default=None)
global_state: State | None = None
"""The state every call starts from when its context has none (set by ``maru.tracing.enable``)."""

_ids = itertools.count(1)
next_run_id = _ids.__next__

_PERF_ZERO = time.perf_counter()
_WALL_ZERO = time.time()
perf_counter = time.perf_counter


def wall_time(perf: float) -> float:
    """Epoch seconds of a ``time.perf_counter()`` reading taken in this process."""
    return _WALL_ZERO + (perf - _PERF_ZERO)


_MASK64 = (1 << 64) - 1
_key_pid = -1
_key = 0  # random per process, drawn again in a forked child


def run_id_key() -> int:
    """This process's random 64-bit key for :func:`run_id_str` (a forked child draws its own)."""
    global _key_pid, _key
    pid = os.getpid()
    if pid != _key_pid:
        _key_pid, _key = pid, int.from_bytes(os.urandom(8), "big")
    return _key


def run_id_str(run_id: int, key: int | None = None) -> str:
    """A process-local run id as the string events and stores show: 16 hex characters that look
    random from the first one on, so a short prefix (``maru trace show 3f9c``) picks a trace out
    of one run and across processes.

    Fibonacci hashing: the counter times the odd 64-bit golden-ratio constant, plus the process's
    random :func:`run_id_key`, modulo 2**64. Multiplying by an odd number is a bijection, so two
    runs of one process never share an id; the top digits of consecutive multiples of the golden
    ratio spread evenly, so consecutive runs differ from the first character; and the random key
    makes ids of other processes collide about as often as random 64-bit numbers do."""
    return f"{(run_id * 0x9E3779B97F4A7C15 + (run_id_key() if key is None else key)) & _MASK64:016x}"


COPIED: Final = frozenset({list, dict})
"""The types a run's input or output is copied from when recorded (see :func:`snapshot`)."""


def snapshot(value: Any) -> Any:
    """``value`` as it is now, for a run record: a list is copied, a dict too, with its list values
    (a prompt's ``{"history": [...]}``). The tracer turns records into JSON later, on its own thread;
    by then the caller may have appended to the list it passed (an agent appends each reply to the
    messages it sent the model). Messages and other values are kept by reference, as they are not
    changed in place. Call it only for types in :data:`COPIED` (the hot path checks the type first)."""
    if type(value) is list:
        return value.copy()
    copy = value.copy()
    for key, item in value.items():  # a loop, not a comprehension: no frame of its own on 3.11
        if type(item) is list:
            copy[key] = item.copy()
    return copy


def set_global_collector(collector: Collector | None) -> None:
    """Trace every call in this process into ``collector`` (``None`` stops)."""
    global global_state
    global_state = None if collector is None else root_state(collector)


def active_state() -> State | None:
    state = current_run.get()
    return global_state if state is None else state


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

    # LangChain's events are dicts: ``event["event"]``, ``event.get("tags")`` read the same here.
    def __getitem__(self, key: str) -> Any:
        if key not in RunEvent.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in RunEvent.__dataclass_fields__ else default


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Deliver the events of every run started inside this block to ``listener``.

    Listeners are called synchronously on the thread that runs the step; one that raises is logged and
    ignored, so observing a chain can never break it.
    """
    state = active_state() or root_state(None)
    token = current_run.set((state[LISTENERS] + (listener,), *state[COLLECTOR:]))
    try:
        yield
    finally:
        current_run.reset(token)


def _emit(
    phase: str, runnable: Runnable, name: str | None, config: Any, state: State, child: RunState, data: dict[str, Any]
) -> None:
    """Tell the listeners of ``child``, the state of a run started under ``state``, what happened to it."""
    listeners, _, run_id, trace_id, _, _ = child
    parent_id = state[RUN_ID]
    kind = runnable.kind
    event = RunEvent(
        event=f"on_{kind}_{phase}",
        phase=phase,
        kind=kind,
        name=name or runnable.name,
        run_id=run_id_str(run_id),
        parent_id=None if parent_id is None else run_id_str(parent_id),
        trace_id=run_id_str(trace_id),
        parent_ids=tuple(run_id_str(p) for p in state[PARENT_IDS]),
        tags=list(config.get("tags", ())) if config else [],
        metadata=dict(config.get("metadata", {})) if config else {},
        data=data,
    )
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # an observer must never break the observed chain
            log.exception("run event listener %r failed", listener)


def _open(state: State, config: Any) -> tuple[RunState, str | None, Any]:
    """Start a run under ``state``: its child state, run name and the config its hook gets."""
    listeners, collector, _, trace_id, parent_ids, records = state
    run_id = next_run_id()
    if trace_id is None:  # a root run starts a trace
        trace_id = run_id
        records = [] if collector is not None else None
    name = None
    if config and "run_name" in config:  # run_name names this run only, not its children
        name = config["run_name"]
        config = {k: v for k, v in config.items() if k != "run_name"}
    child = (listeners, collector, run_id, trace_id, (*parent_ids, run_id) if listeners else (), records)
    return child, name, config


def _close(
    state: State, child: RunState, runnable: Runnable, name: str | None, config: Any,
    input: Any, output: Any, error: BaseException | None, t0: float,
) -> None:
    """Finish a run: record it, hand a finished trace to the collector, tell listeners."""
    t1 = perf_counter()
    listeners, collector, run_id, trace_id, _, records = child
    parent = state[RUN_ID]
    if records is not None:
        if type(output) in COPIED:
            output = snapshot(output)
        records.append((run_id, parent, trace_id, runnable, name, config, input, output, error, t0, t1))
        if parent is None:
            submit_trace(collector, records)
    if listeners:
        if error is None:
            data = {"input": input, "output": output}
        else:
            data = {"input": input, "error": error}
        _emit("end" if error is None else "error", runnable, name, config, state, child, data)


def traced_call(
    runnable: Runnable,
    state: State,
    fn: Callable[..., Any],
    input: Any,
    config: Any,
    kwargs: dict,
    _next_id: Callable[[], int] = next_run_id,  # bound once: locals are cheaper than globals here
    _clock: Callable[[], float] = perf_counter,
    _set: Callable[..., Any] = current_run.set,
    _reset: Callable[..., Any] = current_run.reset,
    _copied: frozenset[type] = COPIED,
) -> Any:
    listeners, collector, parent, trace_id, _, records = state
    if not listeners:  # only a collector: the lean path, no events, one tuple per run
        sent = snapshot(input) if type(input) in _copied else input
        run_id = _next_id()
        if trace_id is None:  # a root run starts a trace
            trace_id = run_id
            records = []
        name = None
        if config and "run_name" in config:
            name = config["run_name"]
            config = {k: v for k, v in config.items() if k != "run_name"}
        t0 = _clock()
        token = _set(((), collector, run_id, trace_id, (), records))
        try:
            output = fn(input, config, **kwargs) if kwargs else fn(input, config)
        except BaseException as exc:
            _reset(token)
            if records is not None:
                records.append((run_id, parent, trace_id, runnable, name, config, sent, None, exc, t0, _clock()))
                if parent is None:
                    submit_trace(collector, records)
            raise
        _reset(token)
        if records is not None:
            kept = snapshot(output) if type(output) in _copied else output
            records.append((run_id, parent, trace_id, runnable, name, config, sent, kept, None, t0, _clock()))
            if parent is None:
                submit_trace(collector, records)
        return output
    return _traced_call_observed(runnable, state, fn, input, config, kwargs)


def submit_trace(collector: Collector | None, records: TraceRecords) -> None:
    try:
        collector.submit(records)  # type: ignore[union-attr]
    except Exception:
        log.exception("trace collector %r failed", collector)


def _traced_call_observed(
    runnable: Runnable, state: State, fn: Callable[..., Any], input: Any, config: Any, kwargs: dict
) -> Any:
    child, name, config = _open(state, config)
    listeners = child[LISTENERS]
    sent = snapshot(input) if type(input) in COPIED else input
    if listeners:
        _emit("start", runnable, name, config, state, child, {"input": sent})
    t0 = perf_counter()
    token = current_run.set(child)
    try:
        output = fn(input, config, **kwargs)
    except BaseException as exc:
        current_run.reset(token)
        _close(state, child, runnable, name, config, sent, None, exc, t0)
        raise
    current_run.reset(token)
    _close(state, child, runnable, name, config, sent, output, None, t0)
    return output


async def traced_acall(
    runnable: Runnable, state: State, fn: Callable[..., Any], input: Any, config: Any, kwargs: dict
) -> Any:
    child, name, config = _open(state, config)
    listeners = child[LISTENERS]
    sent = snapshot(input) if type(input) in COPIED else input
    if listeners:
        _emit("start", runnable, name, config, state, child, {"input": sent})
    t0 = perf_counter()
    token = current_run.set(child)
    try:
        output = await fn(input, config, **kwargs)
    except BaseException as exc:
        current_run.reset(token)
        _close(state, child, runnable, name, config, sent, None, exc, t0)
        raise
    current_run.reset(token)
    _close(state, child, runnable, name, config, sent, output, None, t0)
    return output


def traced_iter(
    runnable: Runnable, state: State, fn: Callable[..., Iterator[Any]], input: Any, config: Any, kwargs: dict
) -> Iterator[Any]:
    """Trace a stream. The child state is set only while the inner generator runs, so it never
    leaks into the consumer's code between chunks."""
    child, name, config = _open(state, config)
    listeners = child[LISTENERS]
    recorder = input if isinstance(input, ChunkRecorder) else None
    sent = snapshot(input) if type(input) in COPIED else input
    if listeners:
        _emit("start", runnable, name, config, state, child, {"input": None if recorder else sent})
    t0 = perf_counter()
    output: Any = NOTHING
    token = current_run.set(child)
    try:
        iterator = iter(fn(input, config, **kwargs))
    finally:
        current_run.reset(token)
    try:
        while True:
            token = current_run.set(child)
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            finally:
                current_run.reset(token)
            if listeners:
                _emit("stream", runnable, name, config, state, child, {"chunk": chunk})
            output = add_chunks(output, chunk)
            yield chunk
    except BaseException as exc:
        close_stream(iterator)  # closed early: close the step's stream now, not when the trace lets go
        _close(state, child, runnable, name, config, recorder.value if recorder else sent,
               None if output is NOTHING else output, exc, t0)
        raise
    _close(state, child, runnable, name, config, recorder.value if recorder else sent,
           None if output is NOTHING else output, None, t0)


async def traced_aiter(
    runnable: Runnable,
    state: State,
    fn: Callable[..., AsyncIterator[Any]],
    input: Any,
    config: Any,
    kwargs: dict,
) -> AsyncIterator[Any]:
    child, name, config = _open(state, config)
    listeners = child[LISTENERS]
    recorder = input if isinstance(input, ChunkRecorder) else None
    sent = snapshot(input) if type(input) in COPIED else input
    if listeners:
        _emit("start", runnable, name, config, state, child, {"input": None if recorder else sent})
    t0 = perf_counter()
    output: Any = NOTHING
    token = current_run.set(child)
    try:
        iterator = fn(input, config, **kwargs).__aiter__()
    finally:
        current_run.reset(token)
    try:
        while True:
            token = current_run.set(child)
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            finally:
                current_run.reset(token)
            if listeners:
                _emit("stream", runnable, name, config, state, child, {"chunk": chunk})
            output = add_chunks(output, chunk)
            yield chunk
    except BaseException as exc:
        await aclose_stream(iterator)  # closed early (see traced_iter)
        _close(state, child, runnable, name, config, recorder.value if recorder else sent,
               None if output is NOTHING else output, exc, t0)
        raise
    _close(state, child, runnable, name, config, recorder.value if recorder else sent,
           None if output is NOTHING else output, None, t0)
