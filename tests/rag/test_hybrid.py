"""Weighted reciprocal rank fusion and the hybrid retriever's per-query adaptive weights."""

from __future__ import annotations

import threading

import pytest

from maru.rag import Document
from maru.rag.lexical import BM25Retriever
from maru.rag.retrievers.base import Retriever
from maru.rag.retrievers.hybrid import (
    AdaptiveWeighting,
    HybridRetriever,
    reciprocal_rank_fusion,
    score_spread,
)


class Fixed(Retriever):
    """Returns a fixed ranking (ids with scores), at most ``k`` of it; records calls."""

    def __init__(self, ranking, k=4):
        self.ranking, self.k, self.calls, self.threads = ranking, k, [], set()

    def retrieve(self, query):
        self.calls.append(query)
        self.threads.add(threading.get_ident())
        return [Document(f"text {i}", {"src": i}, i, s) for i, s in self.ranking[: self.k]]


def ids(docs):
    return [d.id for d in docs]


def test_rrf_sums_reciprocal_ranks_and_merges_duplicates():
    a = [Document("x", id="x"), Document("y", id="y"), Document("z", id="z")]
    b = [Document("y", id="y"), Document("w", id="w")]
    fused = reciprocal_rank_fusion([a, b], rrf_k=60)
    assert ids(fused) == ["y", "x", "w", "z"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)


def test_rrf_weights_and_k_and_documents_without_ids():
    a = [Document("alpha"), Document("beta")]
    b = [Document("beta"), Document("alpha")]
    assert [d.text for d in reciprocal_rank_fusion([a, b], weights=[1, 3])] == ["beta", "alpha"]
    assert [d.text for d in reciprocal_rank_fusion([a, b], weights=[3, 1], k=1)] == ["alpha"]
    # a ranking that repeats a document votes once for it
    assert reciprocal_rank_fusion([[Document("a"), Document("a")]])[0].score == pytest.approx(1 / 61)
    with pytest.raises(ValueError, match="one per ranking"):
        reciprocal_rank_fusion([a, b], weights=[1])


def test_score_spread_measures_how_far_the_top_stands_out():
    assert score_spread([10, 9, 8, 1, 1]) == pytest.approx(0.9)
    assert score_spread([0.51, 0.5, 0.5, 0.49]) == pytest.approx(0.02 / 0.51)
    assert score_spread([1.0, *[0.5] * 30], depth=20) == pytest.approx(0.5)
    assert score_spread([None] * 10) is None
    assert score_spread([1.0]) is None  # one score tells nothing
    assert score_spread([-0.2, -0.5]) == 0.0  # nothing even similar


def test_adaptive_weighting_is_relative_to_the_most_decisive_ranking():
    w = AdaptiveWeighting(power=2)
    assert w.factors([[10, 1], [1.0, 0.55]]) == pytest.approx([1.0, 0.25])
    assert w.factors([[10, 1], [None, None]]) == [1.0, 1.0]  # no scores: untouched
    assert w.factors([[1, 1], [2, 2]]) == [1.0, 1.0]  # nobody decisive: nothing to tell
    assert AdaptiveWeighting(power=2, floor=0.5).factors([[10, 1], [1.0, 0.99]])[1] == 0.5


# A confident ranking (its top hit stands far above the rest) and a flat one that disagrees.
CONFIDENT = [("gold", 12.0), ("b", 3.0), ("c", 2.9), ("d", 2.8), ("e", 2.7), ("f", 2.6)] + [
    (f"s{i}", 2.5 - i * 0.01) for i in range(20)
]
FLAT = [(f"n{i}", 0.30 - i * 0.001) for i in range(4)] + [("gold", 0.296)] + [
    (f"m{i}", 0.295 - i * 0.001) for i in range(20)
]


def test_plain_rrf_lets_a_flat_ranking_drag_the_confident_hit_down():
    hybrid = HybridRetriever([Fixed(CONFIDENT), Fixed(FLAT)], k=3, adaptive=False)
    top = ids(hybrid.retrieve("q"))
    assert top[0] == "gold"  # in both lists, so RRF still favours it ...
    # ... but the flat retriever's noise fills the rest ahead of the confident retriever's 2nd hit
    assert "n0" in top


def test_adaptive_weights_shrink_the_flat_ranking():
    confident, flat = Fixed(CONFIDENT), Fixed(FLAT)
    hybrid = HybridRetriever([confident, flat], k=3)
    weights = hybrid.effective_weights(hybrid.rankings("q"))
    assert weights[0] == 1.0 and weights[1] < 0.01
    assert ids(hybrid.retrieve("q")) == ["gold", "b", "c"]


def test_flat_ranking_cannot_outvote_when_gold_is_missing_from_it():
    flat_without_gold = [(i, s) for i, s in FLAT if i != "gold"]
    plain = HybridRetriever([Fixed(CONFIDENT), Fixed(flat_without_gold)], k=1, adaptive=False)
    adaptive = HybridRetriever([Fixed(CONFIDENT), Fixed(flat_without_gold)], k=1)
    assert ids(plain.retrieve("q")) in (["gold"], ["n0"])  # a tie broken by order
    assert ids(adaptive.retrieve("q")) == ["gold"]


def test_retrievers_are_asked_for_fetch_k_and_run_concurrently():
    a, b = Fixed(CONFIDENT, k=2), Fixed(FLAT, k=2)
    hybrid = HybridRetriever([a, b], k=2, fetch_k=25)
    assert len(hybrid.rankings("q")[0]) == 25
    assert a.k == 2  # the caller's retriever is not modified; a copy fetches more
    assert hybrid.fetch_k == 25
    assert HybridRetriever([a], k=10).fetch_k == 40


def test_base_weights_apply_without_adaptation():
    r1 = Fixed([("x", 1.0), ("y", 0.5)])
    r2 = Fixed([("y", 1.0), ("x", 0.5)])
    assert ids(HybridRetriever([r1, r2], k=2, weights=[2, 1], adaptive=False).retrieve("q")) == ["x", "y"]
    assert ids(HybridRetriever([r1, r2], k=2, weights=[1, 2], adaptive=False).retrieve("q")) == ["y", "x"]


def test_a_failing_retriever_raises():
    class Broken(Retriever):
        def retrieve(self, query):
            raise RuntimeError("index offline")

    with pytest.raises(RuntimeError, match="index offline"):
        HybridRetriever([Fixed(CONFIDENT), Broken()]).retrieve("q")


def test_constructor_errors():
    with pytest.raises(ValueError, match="at least one"):
        HybridRetriever([])
    with pytest.raises(ValueError, match="one per retriever"):
        HybridRetriever([Fixed(CONFIDENT)], weights=[1, 2])
    with pytest.raises(ValueError, match=">= 0"):
        HybridRetriever([Fixed(CONFIDENT)], weights=[-1])


def test_real_bm25_in_a_hybrid_with_a_language_it_cannot_read():
    docs = [
        Document("세종대왕은 1443년에 훈민정음을 창제하였다.", id="ko"),
        Document("The wing was tested in a wind tunnel.", id="en"),
    ]
    bm25 = BM25Retriever(docs, k=2)
    hybrid = HybridRetriever([bm25, Fixed([("en", 0.2), ("ko", 0.19)])], k=1)
    assert ids(hybrid.retrieve("훈민정음을 만든 사람")) == ["ko"]


# ------------------------------------------------------------------ real embeddings (MiniLM)
@pytest.fixture(scope="module")
def minilm():
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from maru.rag.embeddings import LocalEmbeddings

    emb = LocalEmbeddings(device="cpu")
    emb.embed_query("warm up")  # load once for the module
    return emb


MIXED = [
    Document("Cats are popular household animals that purr and chase mice.", id="cats"),
    Document("The stock market fell sharply after the interest rate decision.", id="market"),
    Document("Jet engines compress air, burn fuel and expel hot exhaust for thrust.", id="jet"),
    Document("세종대왕은 1443년에 훈민정음을 창제하였다.", id="hangul"),
    Document("이순신은 임진왜란 때 거북선을 이끌고 왜군을 물리쳤다.", id="yi"),
    Document("김치는 배추와 고춧가루로 담그는 한국의 전통 음식이다.", id="kimchi"),
]


def test_hybrid_with_real_embeddings_on_a_mixed_corpus(minilm):
    from maru.rag import InMemoryStore

    store = InMemoryStore(minilm)
    store.add(MIXED)
    dense = store.as_retriever(k=4)
    bm25 = BM25Retriever(MIXED, k=4)
    hybrid = HybridRetriever([dense, bm25], k=2)
    # a paraphrase with no word in common: only the dense side finds it
    assert bm25.retrieve("feline pets") == []
    assert ids(hybrid.retrieve("feline pets"))[0] == "cats"
    # Korean: MiniLM is English-only, BM25 on morphemes is right, and adaptive weights keep it on top
    for query, gold in [("훈민정음을 만든 왕은 누구인가", "hangul"), ("거북선을 이끈 장군", "yi"),
                        ("배추로 만드는 음식", "kimchi")]:
        assert ids(hybrid.retrieve(query))[0] == gold


class _EnglishOnly:
    """An embedding model that says it reads English (Latin script) only, as MiniLM does."""

    languages = frozenset({"en"})

    def embed_array(self, texts):
        import numpy as np

        # A confident-looking but meaningless ranking: every text gets a different, peaked vector.
        return np.stack([np.eye(8, dtype=np.float32)[len(t) % 8] for t in texts])

    def embed_query(self, text):
        return self.embed_array([text])[0].tolist()


def test_an_embedding_model_gets_no_vote_on_a_query_it_cannot_read():
    """MiniLM splits Hangul into jamo: its ranking for a Korean question is noise, and a hybrid
    that lets it vote lands below BM25 alone (KorQuAD held out: -0.035 recall@1). A model that
    declares its languages is not even asked for a query in another script."""
    from maru.rag.stores.memory import InMemoryStore

    docs = [Document(t, id=str(i)) for i, t in enumerate(
        ["서울은 대한민국의 수도이다", "부산은 항구 도시이다", "제주도는 섬이다", "Paris is in France"])]
    store = InMemoryStore(_EnglishOnly())
    store.add(docs)
    dense = store.as_retriever(k=4)
    bm25 = BM25Retriever(docs, k=4)
    hybrid = HybridRetriever([dense, bm25], k=4)
    korean = "대한민국의 수도는 어디인가"
    assert not dense.reads(korean) and dense.reads("Where is Paris?")
    assert ids(hybrid.retrieve(korean)) == ids(bm25.retrieve(korean))
    assert hybrid.rankings(korean)[0] == []  # the dense ranking was not fetched
    english = hybrid.rankings("Where is Paris?")
    assert english[0] and english[1]


def test_the_default_local_model_declares_english_and_a_cache_passes_it_on():
    from maru.rag.embeddings import CachedEmbeddings, LocalEmbeddings, default_model_path

    assert LocalEmbeddings().languages == frozenset({"en"})
    assert LocalEmbeddings(model=default_model_path()).languages == frozenset({"en"})
    assert LocalEmbeddings(model="/some/fine-tuned/folder").languages is None  # claims nothing
    assert CachedEmbeddings(LocalEmbeddings()).languages == frozenset({"en"})


def test_a_score_floor_measures_confidence_from_where_unrelated_texts_sit():
    """E5 scores unrelated passages near 0.7: measured from zero, a clear top hit (0.92 over 0.78)
    looks flat and the ranking got no say; from its floor it stands out."""
    scores = [0.92, 0.80, 0.79, 0.78]
    assert score_spread(scores) == pytest.approx(0.152, abs=1e-3)
    assert score_spread(scores, floor=0.7) == pytest.approx((0.92 - 0.78) / 0.22)
    bm25 = [9.0, 6.0, 5.0, 4.5]  # spread 0.5
    plain = AdaptiveWeighting().factors([scores, bm25])
    floored = AdaptiveWeighting().factors([scores, bm25], floors=[0.7, 0.0])
    assert plain[0] < 0.01 and floored[0] == 1.0 and floored[1] < 1.0


def test_e5_declares_its_floor_and_a_vector_retriever_passes_it_on():
    from maru.models import E5Embeddings
    from maru.rag.stores.memory import InMemoryStore

    assert E5Embeddings.similarity_floor == 0.7
    assert InMemoryStore(E5Embeddings()).as_retriever().score_floor == 0.7
    assert InMemoryStore(_EnglishOnly()).as_retriever().score_floor == 0.0
