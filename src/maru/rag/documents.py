"""``Document``: a piece of text with an id and metadata — what loaders yield, splitters cut,
stores hold and retrievers return."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Document", "as_document", "as_documents", "content_hash"]


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


def as_document(doc: Any) -> Document:
    """``doc`` as a maru :class:`Document`: itself, or a copy of a LangChain-shaped one
    (``page_content``, ``metadata``, ``id``), so LangChain loaders and splitters feed maru's."""
    if isinstance(doc, Document):
        return doc
    text = getattr(doc, "page_content", None)
    if not isinstance(text, str):
        raise TypeError(
            f"expected a Document, got {type(doc).__name__}: {doc!r:.80}; pass maru Documents "
            "(Document(text, metadata)) or documents with page_content and metadata, as LangChain's"
        )
    return Document(text, dict(getattr(doc, "metadata", None) or {}), getattr(doc, "id", None) or None)


def as_documents(docs: Iterable[Any]) -> Iterator[Document]:
    """:func:`as_document` over ``docs``, lazily (a large corpus never sits in memory twice)."""
    return map(as_document, docs)


def content_hash(text: str, metadata: dict[str, Any] | None = None) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        h.update(b"\x00")
        h.update(json.dumps(metadata, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()
