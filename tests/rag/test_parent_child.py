from __future__ import annotations

from pathlib import Path

import pytest
from _indexing_support import HashEmbeddings, MemoryStore, SentenceSplitter

from maru.errors import IndexingError
from maru.rag.docstore import DocStore, InMemoryDocStore, SQLDocStore
from maru.rag.documents import Document
from maru.rag.indexing import IndexResult
from maru.rag.parent_child import index_parent_child
from maru.rag.records import RecordManager


@pytest.fixture(params=["memory", "sql"])
def docstore(request, tmp_path: Path) -> DocStore:
    if request.param == "memory":
        yield InMemoryDocStore()
        return
    ds = SQLDocStore(f"sqlite:///{tmp_path / 'docs.db'}", namespace="pc")
    yield ds
    ds.close()


@pytest.fixture
def emb() -> HashEmbeddings:
    return HashEmbeddings()


@pytest.fixture
def store(emb) -> MemoryStore:
    return MemoryStore(emb)


@pytest.fixture
def records(tmp_path: Path) -> RecordManager:
    rm = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="pc")
    yield rm
    rm.close()


def run(docs, store, docstore, records, **kwargs) -> IndexResult:
    return index_parent_child(
        docs, child_splitter=SentenceSplitter(), store=store, docstore=docstore, records=records, **kwargs
    )


def parents_and_children(store, docstore) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """parent id -> text; child id -> (text, parent id)."""
    keys = list(docstore.keys())
    parents = {k: d.text for k, d in zip(keys, docstore.mget(keys), strict=True) if d is not None}
    children = {d.id: (d.text, d.metadata["parent_id"]) for d in store.get(list(store.ids()))}
    return parents, children


def corpus() -> list[Document]:
    return [
        Document("Alpha one. Alpha two. Alpha three", {"source": "a"}),
        Document("Beta one. Beta two", {"source": "b"}),
    ]


def test_first_run_writes_parents_and_children_then_rerun_skips_all(store, docstore, records, emb):
    assert run(corpus(), store, docstore, records) == IndexResult(added=7)  # 2 parents + 5 children
    parents, children = parents_and_children(store, docstore)
    assert sorted(parents.values()) == ["Alpha one. Alpha two. Alpha three", "Beta one. Beta two"]
    assert len(children) == 5
    for cid, (_, pid) in children.items():
        assert pid in parents and cid.startswith(f"{pid}:")
    assert sorted(emb.texts) == sorted(t for t, _ in children.values())  # parents are not embedded

    assert run(corpus(), store, docstore, records, cleanup="incremental") == IndexResult(skipped=7)
    assert len(emb.texts) == 5
    assert set(records.list_ids()) == set(parents) | set(children)


def test_changed_parent_replaces_its_children_even_without_cleanup(store, docstore, records):
    run(corpus(), store, docstore, records)
    changed = [Document("Alpha ONE. Alpha two", {"source": "a"}), corpus()[1]]
    result = run(changed, store, docstore, records)
    # parent a rewritten, child 0 rewritten, child 1 unchanged, child 2 gone; b untouched
    assert result == IndexResult(updated=2, skipped=4, deleted=1)
    parents, children = parents_and_children(store, docstore)
    assert sorted(parents.values()) == ["Alpha ONE. Alpha two", "Beta one. Beta two"]
    assert sorted(t for t, _ in children.values()) == ["Alpha ONE", "Alpha two", "Beta one", "Beta two"]
    assert set(records.list_ids()) == set(parents) | set(children)


@pytest.mark.parametrize("cleanup", ["incremental", "scoped", "full"])
def test_removed_parent_takes_its_children_and_docstore_entry(store, docstore, records, cleanup):
    docs = [
        Document("One. Two", {"source": "a"}),
        Document("Three. Four", {"source": "a"}),
        Document("Five", {"source": "b"}),
    ]
    run(docs, store, docstore, records)
    result = run(docs[:1] + docs[2:] if cleanup == "full" else docs[:1], store, docstore, records,
                 cleanup=cleanup)
    assert result.deleted == 3  # the second parent of a and its two children
    parents, children = parents_and_children(store, docstore)
    assert sorted(parents.values()) == ["Five", "One. Two"]
    assert sorted(t for t, _ in children.values()) == ["Five", "One", "Two"]
    assert set(records.list_ids()) == set(parents) | set(children)


def test_full_cleanup_reconciles_docstore_orphans(store, docstore, records):
    run(corpus(), store, docstore, records)
    docstore.mset([Document("stray", {}, "stray-parent")])
    run(corpus(), store, docstore, records, cleanup="full")
    assert "stray-parent" not in set(docstore.keys())


def test_parent_splitter_makes_several_parents_per_document(store, docstore, records):
    class HalfSplitter:
        def split_documents(self, documents):
            out = []
            for d in documents:
                half = len(d.text) // 2
                out += [Document(d.text[:half], dict(d.metadata)), Document(d.text[half:], dict(d.metadata))]
            return out

    doc = Document("First part. Still first. Second part. Still second", {"source": "a"}, id="doc")
    run([doc], store, docstore, records, parent_splitter=HalfSplitter())
    parents, children = parents_and_children(store, docstore)
    assert set(parents) == {"doc:0", "doc:1"}
    assert {pid for _, pid in children.values()} == {"doc:0", "doc:1"}
    assert "doc:0:0" in children
    assert run([doc], store, docstore, records, parent_splitter=HalfSplitter()).skipped == len(parents) + len(children)


def test_custom_parent_id_key_and_missing_source(store, docstore, records):
    run(corpus(), store, docstore, records, parent_id_key="pid")
    child = store.get(list(store.ids()))[0]
    assert docstore.mget([child.metadata["pid"]])[0] is not None
    with pytest.raises(IndexingError, match="source"):
        run([Document("no source")], store, docstore, records, cleanup="incremental")


def test_retriever_returns_parents(store, docstore, records):
    from maru.rag.retrievers.parent_child import ParentChildRetriever

    run(corpus(), store, docstore, records)
    retriever = ParentChildRetriever(store, docstore, k=1, fetch_k=5)
    [parent] = retriever.retrieve("Beta two")
    assert parent.text == "Beta one. Beta two"


def test_with_the_project_splitter(store, docstore, records):
    splitters = pytest.importorskip("maru.rag.splitters")
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    child_splitter = splitters.RecursiveSplitter(chunk_size=120, chunk_overlap=0)
    result = index_parent_child([Document(text, {"source": "s"})], child_splitter=child_splitter,
                                store=store, docstore=docstore, records=records)
    assert result.added == 1 + store.count() and store.count() > 5
    again = index_parent_child([Document(text, {"source": "s"})], child_splitter=child_splitter,
                               store=store, docstore=docstore, records=records, cleanup="full")
    assert again == IndexResult(skipped=result.added)


# ---------------------------------------------------------------------------- docstores


def test_docstore_contract(docstore):
    docstore.mset([Document("a", {"k": 1, "nested": {"x": [1, 2]}}, "1"), Document("b", {}, "2")])
    docstore.mset([Document("b2", {"new": True}, "2")])
    got = docstore.mget(["2", "missing", "1"])
    assert got[0] == Document("b2", {"new": True}, "2")
    assert got[1] is None
    assert got[2] == Document("a", {"k": 1, "nested": {"x": [1, 2]}}, "1")
    assert sorted(docstore.keys()) == ["1", "2"]
    assert docstore.mdelete(["1", "missing"]) == 1
    assert list(docstore.keys()) == ["2"]
    with pytest.raises(ValueError, match="id"):
        docstore.mset([Document("no id")])


def test_sql_docstore_namespaces_and_persistence(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    a, b = SQLDocStore(url, namespace="a"), SQLDocStore(url, namespace="b")
    a.mset([Document("in a", {}, "x")])
    assert b.mget(["x"]) == [None]
    a.close()
    again = SQLDocStore(url, namespace="a")
    assert again.mget(["x"])[0].text == "in a" and len(again) == 1
    again.close()
    b.close()
