"""``InMemoryStore``: exact search over a numpy matrix — for tests, examples and small sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import VectorStoreError
from ..documents import Document
from ..filters import Filter, matches, type_name
from .base import VectorStore

if TYPE_CHECKING:
    import numpy as np

    from ...models.embeddings import Embeddings

__all__ = ["InMemoryStore"]


class InMemoryStore(VectorStore):
    """Documents in a dict, vectors in one contiguous matrix; search is a matrix-vector product."""

    def __init__(self, embeddings: Embeddings | None = None) -> None:
        self.embeddings = embeddings
        self._docs: dict[str, Document] = {}
        self._row: dict[str, int] = {}
        self._ids: list[str] = []
        self._matrix: Any = None  # np.ndarray (n × dim), unit rows
        self._types: dict[str, str] = {}

    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        import numpy as np

        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms == 0, 1, norms)
        if self._matrix is not None and unit.shape[1] != self._matrix.shape[1]:
            raise VectorStoreError(
                f"vectors have dimension {unit.shape[1]} but the store holds dimension {self._matrix.shape[1]}"
            )
        new_rows: list[Any] = []
        existing = 0 if self._matrix is None else self._matrix.shape[0]
        for doc, vec in zip(docs, unit, strict=True):
            assert doc.id is not None
            for key, value in doc.metadata.items():
                self._types.setdefault(key, type_name(value))
            row = self._row.get(doc.id)
            if row is None:
                self._row[doc.id] = len(self._ids)
                self._ids.append(doc.id)
                new_rows.append(vec)
            elif row < existing:
                self._matrix[row] = vec
            else:  # the same new id twice in one call: the last one wins
                new_rows[row - existing] = vec
            self._docs[doc.id] = Document(doc.text, dict(doc.metadata), doc.id)
        if new_rows:
            block = np.stack(new_rows)
            self._matrix = block if self._matrix is None else np.vstack([self._matrix, block])

    def _delete(self, ids: Sequence[str]) -> int:
        import numpy as np

        gone = {i for i in ids if i in self._docs}
        if not gone:
            return 0
        keep = [r for r, i in enumerate(self._ids) if i not in gone]
        self._matrix = self._matrix[np.asarray(keep, dtype=np.int64)] if keep else None
        self._ids = [self._ids[r] for r in keep]
        self._row = {i: r for r, i in enumerate(self._ids)}
        for i in gone:
            del self._docs[i]
        return len(gone)

    def _get(self, ids: Sequence[str]) -> list[Document]:
        return [self._copy(self._docs[i]) for i in ids if i in self._docs]

    def _search(
        self, vector: np.ndarray, k: int, filter: Filter | None, with_vectors: bool
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        import numpy as np

        if self._matrix is None:
            return []
        norm = float(np.linalg.norm(vector)) or 1.0
        scores = self._matrix @ (vector / norm)
        if filter is not None:
            allowed = np.fromiter(
                (matches(filter, self._docs[i].metadata) for i in self._ids), dtype=bool, count=len(self._ids)
            )
            scores = np.where(allowed, scores, -np.inf)
        k = min(k, len(self._ids))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        out: list[tuple[Document, float, np.ndarray | None]] = []
        for r in top:
            if not np.isfinite(scores[r]):
                break
            doc = self._copy(self._docs[self._ids[r]])
            out.append((doc, float(scores[r]), self._matrix[r].copy() if with_vectors else None))
        return out

    def count(self) -> int:
        return len(self._docs)

    def field_types(self) -> dict[str, str]:
        return dict(self._types)

    def ids(self) -> Iterator[str]:
        return iter(list(self._ids))

    @staticmethod
    def _copy(doc: Document) -> Document:
        return Document(doc.text, dict(doc.metadata), doc.id)
