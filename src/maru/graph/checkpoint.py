"""Checkpoints: what a run wrote at each superstep, so a thread can be resumed and its history read.

A checkpoint stores the step's *updates* — ``(writer, update)`` pairs in merge order — and the nodes
due next, never the whole state: a conversation of N steps costs O(N) bytes, not O(N²). The state
at any step is the fold of the updates up to it through the graph's reducers (which is why a
reducer's ``prepare`` gives messages their ids before they are stored).

Folding a long thread on every call would cost O(N) per call, so every ``snapshot_every`` steps
the saver also keeps the thread's state at that step (one per thread, replaced each time): a call
starts from the snapshot and folds only the checkpoints after it. The updates themselves are kept,
so the history of every step can still be rebuilt.

A saver implements :meth:`CheckpointSaver.put` and :meth:`CheckpointSaver.records`, and
:meth:`~CheckpointSaver.put_snapshot` / :meth:`~CheckpointSaver.snapshot` to keep snapshots; the
in-memory one is here and the SQLite one in :mod:`maru.graph.sqlite`.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from json import encoder
from typing import Any

from ..messages import BaseMessage, message_from_dict
from .errors import GraphCheckpointError

Writes = list[tuple[str, dict[str, Any] | None]]

_MESSAGE_TAG = "__maru_message__"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One superstep of one thread: what was written, and what runs next.

    ``step`` counts from 0 over the whole thread (every run on it continues the count);
    ``waiting`` holds, for a node behind ``add_edge([a, b], node)``, the sources already done."""

    step: int
    writes: Writes
    next: tuple[str, ...]
    waiting: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


class CheckpointSaver(ABC):
    """Where a compiled graph keeps its threads' checkpoints."""

    snapshot_every: int = 32
    """Keep the thread's state every this many steps (0: never; a call then folds every step)."""
    io_bound: bool = False
    """The saver waits on the network: async runs call it on the shared pool, not the event loop."""

    @abstractmethod
    def put(self, thread_id: str, checkpoint: Checkpoint) -> None:
        """Store one step's checkpoint (durably, before the run moves on)."""

    @abstractmethod
    def records(self, thread_id: str, after: int = -1) -> list[Checkpoint]:
        """The thread's checkpoints with a step after ``after``, oldest first (empty for an
        unknown thread)."""

    def put_snapshot(self, thread_id: str, snapshot: Checkpoint) -> None:  # noqa: B027 - optional
        """Keep ``snapshot`` (the state at its step as its one write, and that step's next nodes)
        in place of the thread's previous one. A saver without snapshots ignores it."""

    def snapshot(self, thread_id: str) -> Checkpoint | None:
        """The thread's latest snapshot, if the saver keeps them."""
        return None

    def load(self, thread_id: str) -> tuple[Checkpoint | None, list[Checkpoint]]:
        """What a call starts from: the thread's snapshot (if any) and the checkpoints after it.
        A saver may answer both in one read."""
        snapshot = self.snapshot(thread_id)
        return snapshot, self.records(thread_id, -1 if snapshot is None else snapshot.step)

    def prune(self, thread_id: str) -> int:
        """Delete the thread's checkpoints that its snapshot covers (how many went): calls and
        ``get_state`` read the same state; history starts at the snapshot."""
        raise NotImplementedError(f"{type(self).__name__} cannot prune threads")

    def delete_thread(self, thread_id: str) -> None:
        """Forget a thread."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete threads")


class InMemorySaver(CheckpointSaver):
    """Checkpoints in this process's memory, stored encoded (as the SQLite saver stores them), so
    a node changing a value later does not change history."""

    def __init__(self, *, snapshot_every: int = 32) -> None:
        self.snapshot_every = snapshot_every
        self._threads: dict[str, list[tuple[int, str, float]]] = {}
        self._snapshots: dict[str, tuple[int, str, float]] = {}
        self._lock = threading.Lock()

    def put(self, thread_id: str, checkpoint: Checkpoint) -> None:
        row = (checkpoint.step, encode(checkpoint), checkpoint.created_at)
        with self._lock:
            rows = self._threads.setdefault(thread_id, [])
            if rows and rows[-1][0] >= checkpoint.step:
                raise step_taken(thread_id, checkpoint.step)
            rows.append(row)

    def records(self, thread_id: str, after: int = -1) -> list[Checkpoint]:
        with self._lock:
            rows = [row for row in self._threads.get(thread_id, ()) if row[0] > after]
        return [decode(step, body, created_at) for step, body, created_at in rows]

    def put_snapshot(self, thread_id: str, snapshot: Checkpoint) -> None:  # noqa: B027 - optional
        row = (snapshot.step, encode(snapshot), snapshot.created_at)
        with self._lock:
            self._snapshots[thread_id] = row

    def snapshot(self, thread_id: str) -> Checkpoint | None:
        with self._lock:
            row = self._snapshots.get(thread_id)
        return None if row is None else decode(*row)

    def prune(self, thread_id: str) -> int:
        with self._lock:
            snapshot = self._snapshots.get(thread_id)
            rows = self._threads.get(thread_id, [])
            kept = [row for row in rows if snapshot is None or row[0] > snapshot[0]]
            self._threads[thread_id] = kept
            return len(rows) - len(kept)

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)
            self._snapshots.pop(thread_id, None)

    def stored_bytes(self, thread_id: str) -> int:
        """What the thread's checkpoints and snapshot take, encoded."""
        with self._lock:
            rows = [*self._threads.get(thread_id, ()), *([self._snapshots[thread_id]] if thread_id in self._snapshots else [])]
        return sum(len(body.encode()) for _, body, _ in rows)


MemorySaver = InMemorySaver  # LangGraph's older name


def step_taken(thread_id: str, step: int) -> GraphCheckpointError:
    """Two runs of one thread at once both tried to save the same step."""
    return GraphCheckpointError(
        f"step {step} of thread {thread_id!r} was already saved by another run of the same thread "
        "running at the same time; run one call per thread at a time (or give each its own thread_id)"
    )


def new_checkpoint(
    step: int, writes: Writes, next: tuple[str, ...], waiting: dict[str, list[str]], source: str,
    extra: dict[str, Any] | None = None,
) -> Checkpoint:
    metadata = {"source": source, **extra} if extra else {"source": source}
    return Checkpoint(step, writes, next, waiting, metadata, time.time())


# --------------------------------------------------------------------------- encoding
def encode(checkpoint: Checkpoint) -> str:
    """The checkpoint's writes, next nodes, waiting joins and metadata as one JSON text."""
    body = {"w": checkpoint.writes, "n": checkpoint.next, "m": checkpoint.metadata}
    if checkpoint.waiting:
        body["j"] = checkpoint.waiting
    try:
        return "".join(_encode_json(body, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        raise GraphCheckpointError(
            f"a value in step {checkpoint.step}'s updates cannot be stored in a checkpoint ({exc}); "
            "keep the state to JSON values (str, numbers, lists, dicts) and maru messages"
        ) from exc


def decode(step: int, body: str, created_at: float) -> Checkpoint:
    data = _DECODER.decode(body)
    writes = [(writer, update) for writer, update in data["w"]]
    return Checkpoint(step, writes, tuple(data["n"]), data.get("j", {}), data["m"], created_at)


def _encode_value(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return {_MESSAGE_TAG: value.to_dict()}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r:.80}")


def _json_encoder() -> Callable[[Any, int], Iterable[str]]:
    """Compact JSON text of a value, in pieces, non-ASCII kept as it is. The C encoder is made once
    here: ``json.JSONEncoder.encode`` makes a new one on every call, which was a third of the cost
    of encoding a small checkpoint, paid at every superstep. It does not look for reference cycles
    (a cycle ends in ``RecursionError``): state values come from JSON-like updates."""
    make_c_encoder = getattr(encoder, "c_make_encoder", None)
    if make_c_encoder is None:  # no C accelerator: the pure-Python encoder
        python = json.JSONEncoder(default=_encode_value, ensure_ascii=False, separators=(",", ":"))
        return lambda value, _level: python.iterencode(value)
    made: Callable[[Any, int], Iterable[str]] = make_c_encoder(
        None, _encode_value, encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return made


_encode_json = _json_encoder()


def _decode_value(data: dict[str, Any]) -> Any:
    if len(data) == 1 and _MESSAGE_TAG in data:
        return message_from_dict(data[_MESSAGE_TAG])
    return data


_DECODER = json.JSONDecoder(object_hook=_decode_value)  # made once: json.loads(object_hook=) makes one per call
