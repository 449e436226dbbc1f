"""The state of a graph: its keys, how each key takes an update (its reducer), and the view a node
reads.

A key declared ``Annotated[T, fn]`` merges updates with ``fn(current, update)``; any other key is
replaced. ``add_messages`` appends chat messages (a message with the ``id`` of one already there
replaces it) and ``merge_dicts`` merges dicts key by key. A reducer may also have a ``prepare``
method, run once on each update as the node returns it, before it is stored or merged:
``add_messages`` uses it to turn message-likes into messages and give each one an id, so a state
rebuilt from stored updates is exactly the one the run saw.
"""

from __future__ import annotations

import secrets
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, get_args, get_origin

from ..messages import BaseMessage, to_message
from .errors import GraphError

Reducer = Callable[[Any, Any], Any]
INPUT = "__input__"
"""The writer name of a run's input, in updates and checkpoints."""
SNAPSHOT = "__state__"
"""The writer name of a snapshot's one write: the whole state at its step."""

_EMPTY_OF: dict[Any, Callable[[], Any]] = {list: list, dict: dict, set: set, tuple: tuple, str: str, int: int, float: float}


class AddMessages:
    """Reducer for a list of chat messages: append, or replace the message with the same id."""

    __name__ = "add_messages"

    def prepare(self, update: Any) -> list[BaseMessage]:
        items = update if isinstance(update, list | tuple) else [update]
        messages = [to_message(item) for item in items]
        return [m if m.id is not None else replace(m, id=secrets.token_hex(8)) for m in messages]

    def __call__(self, current: list[BaseMessage] | None, update: Any) -> list[BaseMessage]:
        merged = list(current or ())
        new = update if isinstance(update, list) and all(isinstance(m, BaseMessage) for m in update) else self.prepare(update)
        if not merged:
            return list(new)
        where = {m.id: i for i, m in enumerate(merged)}
        for message in new:
            i = where.get(message.id)
            if i is None:
                where[message.id] = len(merged)
                merged.append(message)
            else:
                merged[i] = message
        return merged

    def __repr__(self) -> str:
        return "add_messages"


add_messages = AddMessages()


def merge_dicts(current: Mapping[str, Any] | None, update: Mapping[str, Any]) -> dict[str, Any]:
    """Reducer for a dict: the update's keys win, the others stay."""
    return {**(current or {}), **update}


@dataclass(frozen=True, slots=True)
class Channel:
    """One state key: its reducer (``None``: replace) and the value a reducer starts from."""

    reducer: Reducer | None
    empty: Callable[[], Any] | None


class Schema:
    """What a state class declares: its keys with their reducers, and how a node sees the state
    (the dict itself, or an instance of the pydantic model)."""

    def __init__(self, schema: type[Any]) -> None:
        self.type = schema
        self.is_model = hasattr(schema, "model_validate") and hasattr(schema, "model_fields")
        self.channels = _channels_of(schema)
        self.open = schema is dict  # any key, each replaced
        self.prepares = {
            key: prepare for key, ch in self.channels.items()
            if (prepare := getattr(ch.reducer, "prepare", None)) is not None
        }

    def view(self, state: dict[str, Any]) -> Any:
        """What a node receives: a pydantic state is validated into its model; a dict as it is."""
        return self.type.model_validate(state) if self.is_model else state

    def normalize(self, writer: str, update: Any) -> dict[str, Any] | None:
        """A node's return value as a dict of known keys, prepared by their reducers."""
        if update is None:
            return None
        if type(update) is dict and not self.prepares and (self.open or update.keys() <= self.channels.keys()):
            return update  # the common case: a plain dict of declared keys, taken as it is
        if self.is_model and isinstance(update, self.type):
            update = {k: getattr(update, k) for k in update.model_fields_set}
        if not isinstance(update, Mapping):
            raise GraphError(
                f"node {writer!r} returned {type(update).__name__} {update!r:.80}; a node returns a "
                "dict of the state keys it changes (or None to change nothing)"
            )
        if not self.open:
            unknown = [k for k in update if k not in self.channels]
            if unknown:
                raise GraphError(
                    f"node {writer!r} wrote {unknown}, which the state {self.type.__name__} does not "
                    f"declare; its keys are {sorted(self.channels)}"
                )
        if not self.prepares or not any(k in self.prepares for k in update):
            return dict(update)
        return {k: self.prepares[k](v) if k in self.prepares else v for k, v in update.items()}

    def apply(self, state: dict[str, Any], writes: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
        """A new state: ``writes`` (writer, update) merged in order. Two writers replacing the
        same key in one step is an error: which one should win is the graph's to say, by a reducer."""
        new = dict(state)
        replaced: dict[str, str] = {}
        channels = self.channels
        for writer, update in writes:
            if not update:
                continue
            for key, value in update.items():
                channel = channels.get(key)
                if channel is None or channel.reducer is None:
                    if key in replaced:
                        raise GraphError(
                            f"nodes {replaced[key]!r} and {writer!r} both set {key!r} in the same step; "
                            f"declare it Annotated[..., reducer] (add_messages, merge_dicts, operator.add) "
                            "to combine their updates, or let one node write it"
                        )
                    replaced[key] = writer
                    new[key] = value
                else:
                    current = new.get(key)
                    if current is None and channel.empty is not None:
                        current = channel.empty()
                    new[key] = channel.reducer(current, value)
        return new


def _channels_of(schema: type[Any]) -> dict[str, Channel]:
    if schema is dict:
        return {}
    try:
        hints = typing.get_type_hints(schema, include_extras=True)
    except (NameError, TypeError) as exc:
        raise GraphError(
            f"cannot read the keys of the state {schema!r} ({exc}); pass a TypedDict or a pydantic "
            "model whose annotations resolve at runtime"
        ) from exc
    fields = getattr(schema, "model_fields", None)
    if fields is not None:
        hints = {k: v for k, v in hints.items() if k in fields}
    return {key: _channel_of(hint) for key, hint in hints.items()}


def _channel_of(hint: Any) -> Channel:
    if get_origin(hint) is not typing.Annotated:
        return Channel(None, None)
    base, *extras = get_args(hint)
    reducers = [e for e in extras if callable(e)]
    if not reducers:
        return Channel(None, None)
    origin = get_origin(base) or base
    return Channel(reducers[-1], _EMPTY_OF.get(origin))
