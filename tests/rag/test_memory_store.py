"""The VectorStore contract on the in-memory store: upsert, get, delete, search, filters, MMR."""

from __future__ import annotations

import numpy as np
import pytest

from maru.errors import FilterError, VectorStoreError
from maru.models.embeddings import Embeddings
from maru.rag import Document, F, InMemoryStore


class AxisEmbeddings(Embeddings):
    """Text 'axis N' → the N-th unit vector of 4 dimensions (plus a little of axis 0)."""

    def embed_documents(self, texts):
        out = []
        for text in texts:
            v = [0.0, 0.0, 0.0, 0.0]
            v[int(text.split()[-1])] = 1.0
            v[0] += 0.1
            out.append(v)
        return out


@pytest.fixture
def store():
    s = InMemoryStore(AxisEmbeddings())
    s.add([
        Document("axis 1", {"year": 2019, "lang": "en"}, "a"),
        Document("axis 2", {"year": 2021, "lang": "ko"}, "b"),
        Document("axis 3", {"year": 2023, "lang": "ko", "tags": ["x"]}, "c"),
    ])
    return s


def test_search_orders_by_similarity_and_sets_score(store):
    hits = store.search("axis 2", k=3)
    assert [d.id for d, _ in hits][0] == "b"
    assert hits[0][1] == pytest.approx(1.0)
    assert hits[0][0].score == hits[0][1]
    assert hits[0][1] > hits[1][1]


def test_upsert_replaces_and_get_keeps_order(store):
    store.upsert([Document("axis 3", {"year": 2000, "lang": "en"}, "a")])
    assert store.count() == 3
    assert [d.id for d in store.get(["c", "zz", "a"])] == ["c", "a"]
    assert store.get(["a"])[0].metadata["year"] == 2000
    assert store.search("axis 3", k=1)[0][0].id in {"a", "c"}


def test_delete_counts_existing(store):
    assert store.delete(["a", "nope"]) == 1
    assert store.count() == 2
    assert sorted(store.ids()) == ["b", "c"]
    assert store.search("axis 1", k=3)[0][0].id != "a"


def test_filters_and_threshold(store):
    ids = [d.id for d, _ in store.search("axis 1", k=3, filter=F.eq("lang", "ko") & F.gte("year", 2022))]
    assert ids == ["c"]
    assert [d.id for d, _ in store.search("axis 1", k=3, filter=F.contains("tags", "x"))] == ["c"]
    assert [d.id for d, _ in store.search("axis 1", k=3, score_threshold=0.5)] == ["a"]
    with pytest.raises(FilterError, match="unknown filter field"):
        store.search("axis 1", filter=F.eq("nope", 1))
    with pytest.raises(TypeError, match="typed tree"):
        store.search("axis 1", filter={"lang": "ko"})  # type: ignore[arg-type]


def test_mmr_prefers_diversity():
    s = InMemoryStore()
    vecs = np.array([[1, 0, 0], [0.99, 0.01, 0], [0.7, 0.7, 0]], dtype=np.float32)
    s.add([Document(str(i), id=str(i)) for i in range(3)], vecs)
    q = [1, 0.05, 0]
    assert {d.id for d, _ in s.search(q, k=2)} == {"0", "1"}
    assert {d.id for d, _ in s.mmr_search(q, k=2, lambda_mult=0.3)} == {"1", "2"}


def test_dimension_and_count_mismatch_are_clear():
    s = InMemoryStore()
    s.add([Document("x", id="x")], [[1.0, 0.0]])
    with pytest.raises(VectorStoreError, match="dimension 3"):
        s.add([Document("y", id="y")], [[1.0, 0.0, 0.0]])
    with pytest.raises(VectorStoreError, match="one vector per document"):
        s.add([Document("y", id="y"), Document("z", id="z")], [[1.0, 0.0]])
    with pytest.raises(VectorStoreError, match="no embeddings"):
        s.search("text query")


def test_retriever_is_a_runnable(store):
    retriever = store.as_retriever(k=1, search_type="similarity")
    assert [d.id for d in retriever.invoke("axis 3")] == ["c"]
    assert [[d.id for d in r] for r in retriever.batch(["axis 1", "axis 2"])] == [["a"], ["b"]]
    with pytest.raises(ValueError, match="score_threshold"):
        store.as_retriever(search_type="threshold")


def test_one_upsert_of_many_new_ids_keeps_each_vector_with_its_document():
    s = InMemoryStore()
    s.add([Document("x", id="x")], [[1.0, 0.0, 0.0]])
    vecs = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    s.add([Document("a", id="a"), Document("b", id="b"), Document("b2", id="b"), Document("c", id="c")], vecs)
    assert s.count() == 4
    assert [s.search(v, k=1)[0][0].id for v in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0])] == ["x", "a", "b", "c"]
    assert s.get(["b"])[0].text == "b2"
