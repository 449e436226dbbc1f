"""``Document``: a piece of text with an id and metadata — what loaders yield, splitters cut,
stores hold and retrievers return."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Document", "content_hash"]


@dataclass(slots=True)
class Document:
    """Text plus metadata. ``id`` is stable and user-settable; ``score`` is set by retrievers
    (higher is more relevant) and is not part of equality."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    score: float | None = field(default=None, compare=False)

    # LangChain users write ``page_content``; both names read the same text.
    @property
    def page_content(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(text=data["text"], metadata=dict(data.get("metadata") or {}), id=data.get("id"))

    def hash(self) -> str:
        """SHA-256 of text and metadata: what the record manager compares to skip unchanged documents."""
        return content_hash(self.text, self.metadata)


def content_hash(text: str, metadata: dict[str, Any] | None = None) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        h.update(b"\x00")
        h.update(json.dumps(metadata, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()
