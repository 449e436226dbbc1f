"""Retrievers as LangChain users write them: ``as_retriever(search_type=..., search_kwargs={...})``,
and composite retrievers (hybrid, compression, parent-child, multi-query) over any runnable that maps
a query to documents — a retriever wrapped in ``with_retry()``, a ``HistoryAwareRetriever``, a
function — whose child retrievals show up as child runs in traces."""

from __future__ import annotations

import pytest

from maru import runnable
from maru.history import HistoryAwareRetriever
from maru.models.embeddings import Embeddings
from maru.models.scripted import ScriptedChatModel
from maru.rag import Document, F, InMemoryStore
from maru.rag.docstore import InMemoryDocStore
from maru.rag.retrievers.compression import ContextualCompressionRetriever
from maru.rag.retrievers.hybrid import HybridRetriever
from maru.rag.retrievers.multi_query import MultiQueryRetriever
from maru.rag.retrievers.parent_child import ParentChildRetriever
from maru.tracing import tracing


class AxisEmbeddings(Embeddings):
    """Text 'axis N ...' → the N-th unit vector of 4 dimensions (plus a little of axis 0)."""

    def embed_documents(self, texts):
        out = []
        for text in texts:
            v = [0.0, 0.0, 0.0, 0.0]
            v[int(text.split()[1])] = 1.0
            v[0] += 0.1
            out.append(v)
        return out


class MemorySink:
    def __init__(self):
        self.runs = []

    def write(self, runs):
        self.runs.extend(runs)

    def flush(self):
        pass

    def close(self):
        pass


@pytest.fixture
def store():
    s = InMemoryStore(AxisEmbeddings())
    s.add([
        Document("axis 1 apples", {"lang": "en"}, "a"),
        Document("axis 2 pears", {"lang": "ko"}, "b"),
        Document("axis 3 plums", {"lang": "ko"}, "c"),
        Document("axis 3 plums again", {"lang": "en"}, "d"),
    ])
    return s


# ----------------------------------------------------------------------------- as_retriever
def test_search_kwargs_as_langchain_passes_them(store):
    assert len(store.as_retriever(search_kwargs={"k": 2}).invoke("axis 3")) == 2
    korean = store.as_retriever(search_kwargs={"k": 4, "filter": {"lang": "ko"}}).invoke("axis 3")
    assert {d.id for d in korean} == {"b", "c"}
    typed = store.as_retriever(search_kwargs={"k": 4, "filter": F.eq("lang", "en")}).invoke("axis 3")
    assert {d.id for d in typed} == {"a", "d"}


def test_search_type_names_of_langchain(store):
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.2})
    assert mmr.search_type == "mmr" and mmr.fetch_k == 4 and mmr.lambda_mult == 0.2
    assert len(mmr.invoke("axis 3")) == 2
    above = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.99, "k": 4}
    )
    assert {d.id for d in above.invoke("axis 3")} == {"c", "d"}


def test_search_kwargs_mistakes_are_named(store):
    with pytest.raises(TypeError, match="search_kwargs.*'top_k'.*k, filter, fetch_k, lambda_mult, score_threshold"):
        store.as_retriever(search_kwargs={"top_k": 2})
    with pytest.raises(TypeError, match="'k' is given twice"):
        store.as_retriever(k=2, search_kwargs={"k": 3})
    with pytest.raises(ValueError, match="filter.*maru.rag.F"):
        store.as_retriever(search_kwargs={"filter": {"year": {"$gt": 2000}}})


# ----------------------------------------------------------------------------- composites
def test_composites_take_a_retriever_wrapped_in_with_retry(store):
    base = store.as_retriever(k=2).with_retry()
    assert [d.id for d in ContextualCompressionRetriever(base, []).invoke("axis 1")][0] == "a"
    hybrid = HybridRetriever([base, store.as_retriever(k=2)], k=2)
    assert hybrid.invoke("axis 2")[0].id == "b"
    model = ScriptedChatModel(["axis 3 plums"], cycle=True)
    assert {d.id for d in MultiQueryRetriever(base, model, n=1).invoke("axis 1")} >= {"a", "c"}


def test_composites_take_a_history_aware_retriever_and_a_function(store):
    model = ScriptedChatModel(["unused"], cycle=True)
    history_aware = HistoryAwareRetriever(model, store.as_retriever(k=1))
    assert ContextualCompressionRetriever(history_aware, []).invoke("axis 2")[0].id == "b"
    assert not model.calls  # no history: the question is used as it is

    def keyword(query: str) -> list[Document]:
        return [Document("axis 1 apples", {}, "a", 1.0)] if "apples" in query else []

    hybrid = HybridRetriever([store.as_retriever(k=2), keyword], k=3, adaptive=False)
    assert hybrid.invoke("axis 3 apples")[0].id in {"a", "c", "d"}
    assert "a" in {d.id for d in hybrid.invoke("axis 3 apples")}


def test_parent_child_over_a_child_retriever(store):
    children = InMemoryStore(AxisEmbeddings())
    children.add([
        Document("axis 1 a", {"parent_id": "P1"}, "c1"),
        Document("axis 2 b", {"parent_id": "P2"}, "c2"),
    ])
    parents = InMemoryDocStore()
    parents.mset([Document("parent one", {}, "P1"), Document("parent two", {}, "P2")])
    retriever = ParentChildRetriever(children.as_retriever(k=2).with_retry(), parents, k=1)
    assert [d.text for d in retriever.invoke("axis 2")] == ["parent two"]


def test_a_base_that_does_not_map_queries_to_documents_is_refused(store):
    with pytest.raises(TypeError, match="retriever.*runnable or function.*query.*documents"):
        ContextualCompressionRetriever(42, [])  # type: ignore[arg-type]
    bad = runnable(lambda q: "not documents", name="bad")
    with pytest.raises(TypeError, match="'bad' returned str.*list of Documents"):
        ContextualCompressionRetriever(bad, []).invoke("axis 1")


def test_child_retrievers_are_child_runs_in_traces(store):
    sink = MemorySink()
    dense = store.as_retriever(k=2).with_retry()
    hybrid = HybridRetriever([dense, store.as_retriever(k=2)], k=2)
    with tracing([sink]):
        ContextualCompressionRetriever(hybrid, []).invoke("axis 2")
    by_id = {r.id: r for r in sink.runs}
    root = next(r for r in sink.runs if r.parent_id is None)
    assert root.name == "ContextualCompressionRetriever"
    hybrid_run = next(r for r in sink.runs if r.name == "HybridRetriever")
    assert hybrid_run.parent_id == root.id
    vector_runs = [r for r in sink.runs if r.name == "VectorRetriever"]
    assert len(vector_runs) == 2
    for run in vector_runs:  # each under the hybrid run (one through the retry wrapper)
        ancestors = []
        parent = run.parent_id
        while parent is not None:
            ancestors.append(by_id[parent].name)
            parent = by_id[parent].parent_id
        assert "HybridRetriever" in ancestors
