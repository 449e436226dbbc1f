"""Language-aware analysis and BM25: Korean morphemes, English stems, CJK bigrams, mixed corpora,
persistence."""

from __future__ import annotations

import pytest

from maru.errors import ConfigurationError, IndexingError
from maru.rag import Document
from maru.rag.lexical import BM25Index, BM25Retriever, analyze, detect_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("세종대왕은 한글을 창제하였다", "ko"),
        ("Python 설치 방법", "ko"),  # Korean with an English term is Korean
        ("東京は日本の首都です", "ja"),
        ("北京是中国的首都", "zh"),
        ("The quick brown fox", "en"),
        ("Привет, мир", "other"),
        ("12345 !!!", "other"),
        ("", "other"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_korean_analysis_keeps_content_morphemes_and_drops_particles():
    assert analyze("한글을") == analyze("한글은") == analyze("한글이") == ["한글"]
    terms = analyze("세종대왕은 1443년에 훈민정음을 창제하였다")
    assert {"세종", "대왕", "훈민정음", "창제", "1443"} <= set(terms)
    assert not {"은", "을", "에", "었", "다"} & set(terms)


def test_latin_inside_korean_is_analysed_like_english():
    assert "python" in analyze("Python을 설치하는 방법")
    assert "instal" in analyze("Installing 패키지") or "install" in analyze("Installing 패키지")


def test_english_analysis_stems_and_drops_stop_words():
    assert analyze("The runners were running quickly") == ["runner", "run", "quick"]
    assert analyze("experiments") == analyze("experiment")


def test_cjk_bigrams_and_single_characters():
    assert analyze("首都") == ["首都"]
    assert analyze("東京") == ["東京"]
    assert analyze("猫 が") == ["猫", "が"]
    assert "中国" in analyze("北京是中国的首都")


def test_unknown_language_name_is_an_error():
    with pytest.raises(ConfigurationError, match="unknown language"):
        analyze("x", "fr")  # type: ignore[arg-type]


KO_DOCS = [
    Document("세종대왕은 1443년에 훈민정음을 창제하였다. 훈민정음은 오늘날 한글이라 불린다.", id="hangul"),
    Document("이순신은 임진왜란 때 거북선을 이끌고 왜군을 물리친 조선의 장군이다.", id="yi"),
    Document("서울은 대한민국의 수도이며 한강이 도시를 가로질러 흐른다.", id="seoul"),
]


def test_korean_query_finds_paragraph_despite_different_particles():
    retriever = BM25Retriever(KO_DOCS, k=2)
    docs = retriever.retrieve("훈민정음이 창제된 해는 언제인가?")
    assert docs[0].id == "hangul"
    docs = retriever.retrieve("거북선으로 왜군과 싸운 장군은 누구야")
    assert docs[0].id == "yi"
    assert docs[0].score is not None and docs[0].score > 0


def test_english_stemming_matches_plural_and_verb_forms():
    docs = [
        Document("The wing was tested in a wind tunnel experiment.", id="wing"),
        Document("Boundary layers thicken downstream of the leading edge.", id="bl"),
        Document("A history of aircraft engines.", id="hist"),
    ]
    retriever = BM25Retriever(docs, k=3)
    assert retriever.retrieve("testing wings in tunnels")[0].id == "wing"
    assert retriever.retrieve("boundary layer thickening")[0].id == "bl"


def test_mixed_corpus_each_document_and_query_by_its_own_language():
    docs = [
        *KO_DOCS,
        Document("Stemming reduces running and runs to run.", id="en"),
        Document("北京是中华人民共和国的首都。", id="zh"),
        Document("東京は日本の首都であり、人口が最も多い都市です。", id="ja"),
    ]
    r = BM25Retriever(docs, k=1)
    assert r.retrieve("한강이 흐르는 수도")[0].id == "seoul"
    assert r.retrieve("what does stemming do to runners")[0].id == "en"
    assert r.retrieve("中国的首都是哪里")[0].id == "zh"
    assert r.retrieve("日本の首都はどこですか")[0].id == "ja"


def test_no_matching_term_returns_nothing():
    r = BM25Retriever(KO_DOCS, k=4)
    assert r.retrieve("quantum chromodynamics") == []
    assert r.retrieve("") == []


def test_search_returns_scored_copies_best_first():
    index = BM25Index().build(KO_DOCS)
    hits = index.search("훈민정음 한글", k=10)
    assert [d.id for d, _ in hits] == ["hangul"]
    doc, score = hits[0]
    assert doc.score == score > 0
    doc.metadata["x"] = 1
    assert "x" not in index.docs[0].metadata
    assert index.search("훈민정음", k=0) == []


def test_from_texts_and_from_documents():
    r = BM25Retriever.from_texts(["apples and pears", "cars and trucks"], [{"n": 1}, {"n": 2}], k=1)
    assert r.retrieve("apple")[0].metadata == {"n": 1}
    r2 = BM25Retriever.from_documents(iter(KO_DOCS), k=1)
    assert r2.retrieve("서울")[0].id == "seoul"


def test_save_and_load_round_trip(tmp_path):
    BM25Retriever(KO_DOCS, k=2).save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx", k=2)
    assert [d.id for d in loaded.retrieve("훈민정음을 창제한 왕")] == ["hangul"]
    assert loaded.index.docs == KO_DOCS


def test_empty_index_saves_loads_and_finds_nothing(tmp_path):
    index = BM25Index().build([])
    assert index.search("anything") == []
    index.save(tmp_path)
    assert BM25Index.load(tmp_path).search("anything") == []


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(IndexingError, match="build"):
        BM25Index().search("x")
    with pytest.raises(IndexingError, match="no saved BM25 index"):
        BM25Index.load(tmp_path)
    with pytest.raises(IndexingError, match="build"):
        BM25Index().save(tmp_path)


def test_retriever_is_a_runnable():
    r = BM25Retriever(KO_DOCS, k=1)
    assert r.invoke("서울의 강")[0].id == "seoul"
    assert [d[0].id for d in r.batch(["서울", "거북선"])] == ["seoul", "yi"]


def test_corpus_of_only_stop_words_finds_nothing_and_round_trips(tmp_path):
    index = BM25Index().build([Document("the a an", id="x"), Document("", id="y")])
    assert index.search("the") == []
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert loaded.search("anything") == [] and len(loaded) == 2
