"""Adding stream chunks together, so a step that cannot stream can gather its input."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from numbers import Number
from typing import Any


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()
"""Marks "no chunk yet" (``None`` is a legitimate chunk)."""


class Snapshot:
    """Marks a stream chunk that is the whole value so far (a JSON parser's growing object), not a
    part of it: gathering such a stream keeps the latest chunk instead of adding them up."""

    __slots__ = ()


class SnapshotDict(Snapshot, dict):  # type: ignore[type-arg]
    __slots__ = ()


class SnapshotList(Snapshot, list):  # type: ignore[type-arg]
    __slots__ = ()


def as_snapshot(value: Any) -> Any:
    """Mark a dict or list as a snapshot (a shallow copy); other values are returned as they are."""
    if isinstance(value, Snapshot):
        return value
    if isinstance(value, dict):
        return SnapshotDict(value)
    if isinstance(value, list):
        return SnapshotList(value)
    return value


def add_chunks(acc: Any, chunk: Any) -> Any:
    """Combine two stream chunks.

    A :class:`Snapshot` chunk replaces what came before. Dicts merge key by key (values added recursively), text / bytes / lists concatenate, and objects
    that define ``+`` (message chunks) add. Numbers and anything else that cannot be added are not
    summed: the latest chunk wins, since a stream of numbers is a sequence of values, not parts.
    """
    if acc is NOTHING or isinstance(chunk, Snapshot):
        return chunk
    if isinstance(acc, dict) and isinstance(chunk, dict):
        merged = dict(acc)
        for key, value in chunk.items():
            merged[key] = add_chunks(merged[key], value) if key in merged else value
        return merged
    if isinstance(acc, Number) or isinstance(chunk, Number) or acc is None or chunk is None:
        return chunk
    try:
        return acc + chunk
    except TypeError:
        return chunk


def gather(chunks: Iterable[Any]) -> Any:
    """Add up a whole stream; ``None`` when it was empty."""
    acc = NOTHING
    for chunk in chunks:
        acc = add_chunks(acc, chunk)
    return None if acc is NOTHING else acc


async def agather(chunks: AsyncIterable[Any]) -> Any:
    acc = NOTHING
    async for chunk in chunks:
        acc = add_chunks(acc, chunk)
    return None if acc is NOTHING else acc


class ChunkRecorder:
    """Passes an input stream through while adding it up, so a traced transform can report the input
    it consumed once the stream is over."""

    __slots__ = ("_source", "value")

    def __init__(self, source: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._source = source
        self.value: Any = None

    def __iter__(self) -> Iterator[Any]:
        acc = NOTHING
        for chunk in self._source:  # type: ignore[union-attr]
            acc = add_chunks(acc, chunk)
            self.value = acc
            yield chunk

    async def __aiter__(self) -> AsyncIterator[Any]:
        acc = NOTHING
        async for chunk in self._source:  # type: ignore[union-attr]
            acc = add_chunks(acc, chunk)
            self.value = acc
            yield chunk
