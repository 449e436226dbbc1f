"""ParentChildRetriever: children searched, parents returned once each, in best-child order."""

from __future__ import annotations

import pytest

from maru.models.embeddings import Embeddings
from maru.rag import Document, F, InMemoryStore
from maru.rag.retrievers.parent_child import ParentChildRetriever


class AxisEmbeddings(Embeddings):
    """'axis N w' → weight w on axis N of 6 dimensions plus a small constant on axis 0, so the
    similarity to a query 'axis N 1' orders children by w."""

    def embed_documents(self, texts):
        out = []
        for text in texts:
            parts = text.split()
            v = [0.0] * 6
            v[int(parts[1])] = float(parts[2]) if len(parts) > 2 else 1.0
            v[0] += 0.3
            out.append(v)
        return out


class DictDocStore:
    def __init__(self, docs):
        self.docs = {d.id: d for d in docs}
        self.requests = []

    def mget(self, ids):
        self.requests.append(list(ids))
        return [self.docs.get(i) for i in ids]


@pytest.fixture
def setup():
    store = InMemoryStore(AxisEmbeddings())
    store.add([
        Document("axis 1 1.0", {"parent_id": "P1", "lang": "en"}, "c1"),
        Document("axis 1 0.9", {"parent_id": "P1", "lang": "en"}, "c2"),
        Document("axis 1 0.8", {"parent_id": "P2", "lang": "ko"}, "c3"),
        Document("axis 1 0.5", {"parent_id": "P3", "lang": "en"}, "c4"),
        Document("axis 2 1.0", {"parent_id": "P4", "lang": "en"}, "c5"),
        Document("axis 1 0.7", {"lang": "en"}, "orphan"),
    ])
    docstore = DictDocStore([
        Document("parent one", {"title": "one"}, "P1"),
        Document("parent two", {"title": "two"}, "P2"),
        Document("parent three", {"title": "three"}, "P3"),
        Document("parent four", {"title": "four"}, "P4"),
    ])
    return store, docstore


def test_parents_deduplicated_in_best_child_order_with_child_scores(setup):
    store, docstore = setup
    docs = ParentChildRetriever(store, docstore, k=3).retrieve("axis 1 1")
    assert [d.id for d in docs] == ["P1", "P2", "orphan"]
    assert docs[0].text == "parent one" and docs[0].metadata == {"title": "one"}
    child_scores = {d.id: s for d, s in store.search("axis 1 1", k=10)}
    assert docs[0].score == pytest.approx(child_scores["c1"])
    assert docs[1].score == pytest.approx(child_scores["c3"])
    assert docs[0].score > docs[1].score > docs[2].score
    assert docstore.requests == [["P1", "P2", "P3", "P4"]]  # one mget for all candidate parents


def test_k_caps_parents_and_orphans_stand_for_themselves(setup):
    store, docstore = setup
    docs = ParentChildRetriever(store, docstore, k=10).retrieve("axis 1 1")
    assert [d.id for d in docs] == ["P1", "P2", "orphan", "P3", "P4"]
    assert docs[2].text == "axis 1 0.7"


def test_search_widens_when_children_share_parents(setup):
    store, docstore = setup
    # fetch_k=2 finds only c1, c2 (both P1); widening finds the second parent
    docs = ParentChildRetriever(store, docstore, k=2, fetch_k=2).retrieve("axis 1 1")
    assert [d.id for d in docs] == ["P1", "P2"]


def test_unknown_parent_is_skipped(setup):
    store, docstore = setup
    del docstore.docs["P2"]
    docs = ParentChildRetriever(store, docstore, k=2).retrieve("axis 1 1")
    assert [d.id for d in docs] == ["P1", "orphan"]


def test_filter_and_custom_parent_key(setup):
    store, docstore = setup
    docs = ParentChildRetriever(store, docstore, k=4, filter=F.eq("lang", "ko")).retrieve("axis 1 1")
    assert [d.id for d in docs] == ["P2"]
    docs = ParentChildRetriever(store, docstore, k=2, parent_id_key="nope").retrieve("axis 1 1")
    assert [d.id for d in docs] == ["c1", "c2"]  # no child names a parent: children stand alone


def test_constructor_errors(setup):
    store, _ = setup
    with pytest.raises(TypeError, match="mget"):
        ParentChildRetriever(store, object())
    with pytest.raises(ValueError, match="positive"):
        ParentChildRetriever(store, DictDocStore([]), k=0)


def test_empty_store_returns_nothing():
    assert ParentChildRetriever(InMemoryStore(AxisEmbeddings()), DictDocStore([])).retrieve("axis 1") == []


def test_with_the_real_docstore(setup):
    from maru.rag.docstore import InMemoryDocStore

    store, dicts = setup
    docstore = InMemoryDocStore()
    docstore.mset(list(dicts.docs.values()))
    docs = ParentChildRetriever(store, docstore, k=2).retrieve("axis 1 1")
    assert [(d.id, d.text) for d in docs] == [("P1", "parent one"), ("P2", "parent two")]
