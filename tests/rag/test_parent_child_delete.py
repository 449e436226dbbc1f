"""Deleting the source of a parent-child index removes its parents and their children (issue 15.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _indexing_support import HashEmbeddings, MemoryStore, SentenceSplitter

from maru.errors import IndexingError
from maru.rag.docstore import SQLDocStore
from maru.rag.documents import Document
from maru.rag.indexing import IndexResult, delete_sources
from maru.rag.parent_child import index_parent_child
from maru.rag.records import RecordManager


@pytest.fixture
def parts(tmp_path: Path):
    store = MemoryStore(HashEmbeddings())
    docstore = SQLDocStore(f"sqlite:///{tmp_path / 'docs.db'}", namespace="pc")
    records = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="pc")
    docs = [
        Document("Alpha one. Alpha two. Alpha three", {"source": "a"}),
        Document("Beta one. Beta two", {"source": "b"}),
    ]
    index_parent_child(docs, child_splitter=SentenceSplitter(), store=store, docstore=docstore, records=records)
    yield store, docstore, records
    docstore.close()
    records.close()


def test_delete_sources_removes_parents_children_and_records(parts):
    from maru.rag.retrievers.parent_child import ParentChildRetriever

    store, docstore, records = parts
    result = delete_sources(["b"], store, records, docstore=docstore)
    assert result == IndexResult(deleted=3)  # one parent, two children
    assert {d.text for d in store.get(list(store.ids()))} == {"Alpha one", "Alpha two", "Alpha three"}
    assert len(docstore) == 1 and records.count() == 4
    hits = ParentChildRetriever(store, docstore, k=2, fetch_k=5).retrieve("Beta two")
    assert all("Beta" not in d.text for d in hits)


def test_delete_sources_without_the_docstore_refuses_before_deleting(parts):
    store, docstore, records = parts
    with pytest.raises(IndexingError, match="docstore"):
        delete_sources(["b"], store, records)
    assert store.count() == 5 and len(docstore) == 2 and records.count() == 7
