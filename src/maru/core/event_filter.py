"""Which run events ``astream_events`` yields: LangChain's include/exclude filters.

A run passes when no include filter is given or it matches any of them (its name, its kind — what
LangChain calls its type — or one of its tags), and it matches none of the exclude filters.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import RunEvent

EVENT_VERSIONS = ("v1", "v2")
"""The ``version=`` values LangChain code passes; maru has one event shape, and both get it."""


def check_version(version: str) -> None:
    if version not in EVENT_VERSIONS:
        raise ValueError(
            f"astream_events(version={version!r}): maru's events have one shape; pass 'v2' (or 'v1', "
            "which gets the same events) or leave it out"
        )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A predicate on events; each filter is kept as a frozenset of names (``None``: not given)."""

    include_names: Collection[str] | None = None
    include_kinds: Collection[str] | None = None
    include_tags: Collection[str] | None = None
    exclude_names: Collection[str] | None = None
    exclude_kinds: Collection[str] | None = None
    exclude_tags: Collection[str] | None = None

    def __post_init__(self) -> None:  # any iterable of names in, a frozenset kept
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, frozenset(value))

    def __call__(self, event: RunEvent) -> bool:
        included = (
            self.include_names is None and self.include_kinds is None and self.include_tags is None
        ) or _matches(event, self.include_names, self.include_kinds, self.include_tags)
        return included and not _matches(event, self.exclude_names, self.exclude_kinds, self.exclude_tags)


def _matches(
    event: RunEvent, names: Collection[str] | None, kinds: Collection[str] | None, tags: Collection[str] | None
) -> bool:
    return bool(
        (names and event.name in names)
        or (kinds and event.kind in kinds)
        or (tags and any(tag in tags for tag in event.tags))
    )
