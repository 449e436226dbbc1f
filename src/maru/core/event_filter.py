"""Which run events ``astream_events`` yields: LangChain's include/exclude filters.

A run passes when no include filter is given or it matches any of them (its name, its kind — what
LangChain calls its type — or one of its tags), and it matches none of the exclude filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


def _names(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@dataclass(frozen=True, slots=True)
class EventFilter:
    include_names: frozenset[str] | None = None
    include_kinds: frozenset[str] | None = None
    include_tags: frozenset[str] | None = None
    exclude_names: frozenset[str] | None = None
    exclude_kinds: frozenset[str] | None = None
    exclude_tags: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        *,
        include_names: Iterable[str] | None = None,
        include_kinds: Iterable[str] | None = None,
        include_tags: Iterable[str] | None = None,
        exclude_names: Iterable[str] | None = None,
        exclude_kinds: Iterable[str] | None = None,
        exclude_tags: Iterable[str] | None = None,
    ) -> EventFilter:
        return cls(
            _names(include_names), _names(include_kinds), _names(include_tags),
            _names(exclude_names), _names(exclude_kinds), _names(exclude_tags),
        )

    def __call__(self, event: RunEvent) -> bool:
        included = (
            self.include_names is None and self.include_kinds is None and self.include_tags is None
        ) or _matches(event, self.include_names, self.include_kinds, self.include_tags)
        return included and not _matches(event, self.exclude_names, self.exclude_kinds, self.exclude_tags)


def _matches(
    event: RunEvent, names: frozenset[str] | None, kinds: frozenset[str] | None, tags: frozenset[str] | None
) -> bool:
    return bool(
        (names and event.name in names)
        or (kinds and event.kind in kinds)
        or (tags and not tags.isdisjoint(event.tags))
    )
