"""The tracer: takes each finished trace's raw records from the hot path and, on a background
thread, turns them into :class:`Run` objects (JSON-safe, redacted, with tokens and cost) for the sinks.

The caller's thread only appends a tuple per run and, when the root run ends, puts the trace's list
on a queue. Everything costly — naming, JSON conversion, redaction, pricing, SQLite — happens here.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import os
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core import events
from ..core.events import (
    LISTENERS,
    SEQ_HEAD,
    SEQ_STEP,
    TraceRecords,
    current_run,
    root_state,
    run_id_key,
    run_id_str,
    wall_time,
)
from ..redact import MASK, Redactor, redact_text
from .run import Run

log = logging.getLogger("maru.tracing")

_PLAIN = frozenset({int, float, bool})

KIND_NAMES = {"chat_model": "llm", "embeddings": "embedding"}
"""Runnable kinds renamed for runs (a chat model's run is an ``llm`` run)."""


class Tracer:
    """Collects traces and writes them to ``sinks`` (objects with ``write(runs)``, ``flush()``,
    ``close()``) on one background thread, in batches (see :meth:`_work`).

    ``max_value_chars`` caps each stored string (a 10 MB document in a prompt stays out of the
    store); ``redact_patterns`` adds regular expressions to mask on top of the built-in secret
    patterns.
    """

    def __init__(
        self,
        sinks: Sequence[Any],
        *,
        redact_patterns: Iterable[str] = (),
        max_value_chars: int = 20_000,
        max_batch_runs: int = 5_000,
        batch_interval: float = 0.05,
    ) -> None:
        self.sinks = list(sinks)
        self.max_batch_runs = max_batch_runs
        self.batch_interval = batch_interval
        self._wake = threading.Event()  # cuts the pause short for flush() and close()
        self.redact = Redactor(redact_patterns)
        self.max_value_chars = max_value_chars
        self._names: dict[str, str] = {}
        self._pending: deque[Any] = deque()  # append/popleft are atomic: no lock, no wake-up per trace
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ hot path
    def submit(self, records: TraceRecords) -> None:
        """Called by the runtime when a trace's root run ends: one ``deque.append``."""
        if self._thread is None:
            self._start()
        self._pending.append(records)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="maru-tracer", daemon=True)
                self._thread.start()

    # ------------------------------------------------------------------ background
    def _work(self) -> None:
        """Every ``batch_interval`` (or at once for ``flush`` / ``close``), convert whatever traces
        have queued up and write them in batches of up to ``max_batch_runs`` runs: one SQLite
        transaction for many traces, and no wake-up of this thread per trace."""
        pending = self._pending
        while True:
            self._wake.wait(self.batch_interval)
            self._wake.clear()
            batch: list[Run] = []
            while pending:
                item = pending.popleft()
                if isinstance(item, list):
                    try:
                        batch.extend(self.to_runs(item))
                    except Exception as exc:
                        _log_failure("could not convert a trace to runs", exc)
                    if len(batch) >= self.max_batch_runs:
                        self._write(batch)
                        batch = []
                    continue
                self._write(batch)  # a flush marker or the stop signal: write what came before it
                batch = []
                if item is None:
                    return
                for sink in self.sinks:
                    _safely(sink.flush)
                item.set()
            self._write(batch)

    def _write(self, runs: list[Run]) -> None:
        if runs:
            for sink in self.sinks:
                _safely(functools.partial(sink.write, runs))

    def to_runs(self, records: TraceRecords) -> list[Run]:
        """Raw records of one trace → runs, children before parents, the root last; the root carries
        the trace's total tokens and cost."""
        make = _RunMaker(self)
        runs: list[Run] = []
        for record in records:
            if type(record) is list:
                make.sequence(record, runs)
            else:
                runs.append(make.run(*record))
        root = runs[-1] if runs else None
        if root is not None and root.kind != "llm":
            llm = [r for r in runs if r.kind == "llm"]
            if llm:
                root.input_tokens = sum(r.input_tokens or 0 for r in llm)
                root.output_tokens = sum(r.output_tokens or 0 for r in llm)
                root.cached_tokens = sum(r.cached_tokens or 0 for r in llm)
                costs = [r.cost for r in llm]
                root.cost = None if any(c is None for c in costs) else sum(costs)  # type: ignore[arg-type]
        return runs

    def _add_usage(self, run: Run, runnable: Any, output: Any) -> None:
        run.model = str(getattr(runnable, "model_name", "") or "") or None
        run.provider = getattr(runnable, "provider", None)
        usage = getattr(output, "usage", None)
        if usage is None:
            return
        run.input_tokens = usage.input_tokens
        run.output_tokens = usage.output_tokens
        run.cached_tokens = usage.cached_tokens
        if getattr(output, "cached", False):
            run.cost = 0.0
        elif run.model:
            import warnings

            from ..usage.prices import cost_for

            local = bool(getattr(runnable, "local", False))
            with warnings.catch_warnings():  # the tracker warns about unknown prices; traces don't repeat it
                warnings.simplefilter("ignore")
                run.cost = cost_for(run.model, usage, local=local)

    def _value(self, value: Any) -> Any:
        if value is None or type(value) in _PLAIN:  # numbers need neither conversion nor redaction
            return value
        return to_jsonable(value, self.max_value_chars, self.redact)

    def _name(self, name: str) -> str:
        """A run's name, redacted (a ``run_name`` may hold a key): each name once, as names repeat."""
        shown = self._names.get(name)
        if shown is None:
            if len(self._names) >= 4096:  # run_names made per call must not grow this forever
                self._names.clear()
            shown = self._names[name] = self._text(str(name))
        return shown

    def _text(self, text: str) -> str:
        """A name, tag or error message: redacted, then cut (see :func:`~maru.redact.redact_then_cut`)."""
        return self.redact.cut(text, self.max_value_chars)

    def _failure(self, error: BaseException) -> tuple[str, str]:
        """A failed run's ``error`` (``"Type: message"``) and its ``stacktrace`` (with the causes of
        the exception), both redacted."""
        summary = self._text(f"{type(error).__name__}: {error}")
        stack = self.redact.text("".join(traceback.format_exception(error)))
        if len(stack) > self.max_value_chars:  # the end says where it failed: keep that
            stack = f"[… {len(stack)} chars]\n" + stack[-self.max_value_chars :]
        return summary, stack

    # ------------------------------------------------------------------ control
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every trace submitted so far is written; False on timeout."""
        if self._thread is None:
            for sink in self.sinks:
                _safely(sink.flush)
            return True
        done = threading.Event()
        self._pending.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush(timeout)
        if self._thread is not None:
            self._pending.append(None)
            self._wake.set()
            self._thread.join(timeout)
        for sink in self.sinks:
            _safely(sink.close)


class _RunMaker:
    """Builds the runs of one trace: what the runs of a trace share (the id key, the clock
    offset, tags and metadata per config) is worked out once per trace, not once per run."""

    __slots__ = ("tracer", "key", "offset", "labels", "ids")

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.key = run_id_key()
        self.offset = wall_time(0.0)  # perf_counter reading + offset = epoch seconds
        self.labels: dict[int, tuple[list[str], dict[str, Any]]] = {}
        self.ids: dict[int, str] = {}  # a trace's id and its parents' ids come up again and again

    def run(
        self, run_id: int, parent: int | None, trace_id: int, runnable: Any, name: str | None, config: Any,
        input: Any, output: Any, error: BaseException | None, t0: float, t1: float,
    ) -> Run:
        tracer, ids = self.tracer, self.ids
        kind = runnable.kind
        kind = KIND_NAMES.get(kind, kind)
        if config:
            tags, metadata = self._labels(config)
        else:
            tags, metadata = [], {}
        run = Run(
            ids.get(run_id) or self._id(run_id),
            ids.get(trace_id) or self._id(trace_id),
            None if parent is None else ids.get(parent) or self._id(parent),
            tracer._name(name or runnable.name),
            kind,
            self.offset + t0,
            self.offset + t1,
            tracer._value(input),
            None if error is not None else tracer._value(output),
            None,
            tags,
            metadata,
        )
        if error is not None:
            run.error, run.stacktrace = tracer._failure(error)
        if kind == "llm":
            tracer._add_usage(run, runnable, output)
        return run

    def _id(self, run_id: int) -> str:
        text = self.ids[run_id] = run_id_str(run_id, self.key)
        return text

    def _labels(self, config: Any) -> tuple[list[str], dict[str, Any]]:
        """Tags and (redacted) metadata of ``config``; each run gets its own copies."""
        labels = self.labels.get(id(config))
        if labels is None:
            metadata = config.get("metadata")
            labels = self.labels[id(config)] = (
                [self.tracer._text(str(t)) for t in config.get("tags", ())],
                self.tracer._value(dict(metadata)) if metadata else {},
            )
        return list(labels[0]), dict(labels[1])

    def sequence(self, record: list[Any], runs: list[Run]) -> None:
        """A sequence record → its steps' runs, then the sequence's own run, appended to ``runs``."""
        seq_id, parent, trace_id, sequence, config, error, input, t_start = record[:SEQ_HEAD]
        value, t = input, t_start
        done = (len(record) - SEQ_HEAD) // SEQ_STEP  # how many steps ran
        for i, step in enumerate(sequence.steps[:done]):
            at = SEQ_HEAD + SEQ_STEP * i
            run_id, output, t_end = record[at : at + SEQ_STEP]
            failed = error if i == done - 1 else None
            runs.append(self.run(run_id, seq_id, trace_id, step, None, config, value, output, failed, t, t_end))
            value, t = output, t_end
        runs.append(
            self.run(seq_id, parent, trace_id, sequence, None, config, input, None if error else value, error, t_start, t)
        )


def _safely(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as exc:  # a broken sink must not take the application (or other sinks) down
        _log_failure("trace sink failed", exc)


def _log_failure(what: str, exc: BaseException) -> None:
    """Log a failure with its traceback, redacted: a sink's or a value's error may quote a secret
    (an exporter's rejected header, a run's input)."""
    log.error("%s\n%s", what, redact_text("".join(traceback.format_exception(exc))).rstrip())


def to_jsonable(value: Any, max_chars: int = 20_000, redactor: Redactor | None = None, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: messages as their dicts, pydantic models dumped, dataclasses
    as dicts, prompt values as messages, long strings cut with a note of their length.

    With a ``redactor``, every string and dict key is redacted *before* it is cut (a key cut in half
    would no longer look like one), and values under secret-named keys are masked whole."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if redactor is not None:
            return redactor.cut(value, max_chars)
        return value if len(value) <= max_chars else value[:max_chars] + f"… [{len(value)} chars]"
    if _depth > 20:
        return to_jsonable(repr(value), 200, redactor)
    deeper = _depth + 1
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        try:
            return to_jsonable(to_dict(), max_chars, redactor, deeper)
        except Exception:  # a to_dict that fails is not ours to fix here
            pass
    to_messages = getattr(value, "to_messages", None)
    if callable(to_messages) and not isinstance(value, type):
        return [to_jsonable(m, max_chars, redactor, deeper) for m in to_messages()]
    if isinstance(value, dict):
        if redactor is None:
            return {str(k): to_jsonable(v, max_chars, None, deeper) for k, v in value.items()}
        return {
            redactor.cut(str(k), max_chars): MASK if redactor.hides(k, v) else to_jsonable(v, max_chars, redactor, deeper)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, max_chars, redactor, deeper) for v in value]
    if isinstance(value, BaseException):
        return to_jsonable(f"{type(value).__name__}: {value}", max_chars, redactor)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_jsonable(dump(mode="json"), max_chars, redactor, deeper)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return to_jsonable(fields, max_chars, redactor, deeper)
    return to_jsonable(repr(value), min(max_chars, 500), redactor)


# --------------------------------------------------------------------------- switching it on
_active: Tracer | None = None


def _default_sinks(path: str | Path | None) -> list[Any]:
    from .store import RunStore

    return [RunStore(path or os.environ.get("MARU_TRACE_DB") or None)]


def enable(
    sinks: Sequence[Any] | None = None,
    *,
    path: str | Path | None = None,
    redact_patterns: Iterable[str] = (),
    max_value_chars: int = 20_000,
) -> Tracer:
    """Trace every call in this process. Default sink: the SQLite run store at ``path`` (else
    ``$MARU_TRACE_DB``, else ``traces.sqlite`` in :mod:`maru._home`), which ``maru trace`` reads. Returns the
    tracer (``flush()`` it to wait for writes); :func:`disable` turns tracing off."""
    global _active
    disable()
    tracer = Tracer(
        _default_sinks(path) if sinks is None else sinks,
        redact_patterns=redact_patterns,
        max_value_chars=max_value_chars,
    )
    _active = tracer
    events.set_global_collector(tracer)
    return tracer


def disable() -> None:
    """Stop tracing; traces already submitted are written first."""
    global _active
    events.set_global_collector(None)
    if _active is not None:
        _active.close()
        _active = None


@atexit.register
def _close_at_exit() -> None:
    if _active is not None:
        _active.close(timeout=5.0)


def enable_from_env() -> Tracer | None:
    """``MARU_TRACING=1`` (or true/yes/on) turns tracing on at ``import maru``."""
    if os.environ.get("MARU_TRACING", "").strip().lower() in ("1", "true", "yes", "on"):
        return enable()
    return None


@contextmanager
def tracing(sinks: Sequence[Any], **options: Any) -> Iterator[Tracer]:
    """Trace only the calls made inside this block (this context, and threads/tasks it starts)."""
    tracer = Tracer(sinks, **options)
    state = current_run.get() or events.global_state
    token = current_run.set(root_state(tracer, state[LISTENERS] if state else ()))
    try:
        yield tracer
    finally:
        current_run.reset(token)
        tracer.close()
