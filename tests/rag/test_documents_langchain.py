"""LangChain documents where loaders' output goes: splitters, the indexer, vector stores, BM25, a
folder loader with LangChain loaders per suffix, and parent-child indexing with LangChain's splitter.
Each is converted into a maru :class:`Document` (text, metadata, id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _indexing_support import HashEmbeddings

from maru.rag.docstore import InMemoryDocStore
from maru.rag.documents import Document, as_document
from maru.rag.indexing import index
from maru.rag.lexical import BM25Retriever
from maru.rag.loaders import DirectoryLoader
from maru.rag.parent_child import index_parent_child
from maru.rag.records import RecordManager
from maru.rag.splitters import RecursiveSplitter
from maru.rag.stores.memory import InMemoryStore

lc_documents = pytest.importorskip("langchain_core.documents")


def lc_doc(text: str, source: str = "a.txt", id: str | None = None):
    return lc_documents.Document(page_content=text, metadata={"source": source}, id=id)


class LangChainStyleLoader:
    """A loader shaped like LangChain's: built from a path, ``lazy_load()`` yields its documents."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lazy_load(self):
        yield lc_doc(self.path.read_text(), str(self.path))


def test_as_document_converts_text_metadata_and_id():
    got = as_document(lc_doc("Busan is a port city.", id="d1"))
    assert got == Document("Busan is a port city.", {"source": "a.txt"}, "d1")
    mine = Document("x")
    assert as_document(mine) is mine
    with pytest.raises(TypeError, match="page_content"):
        as_document("just text")


def test_splitter_takes_langchain_documents():
    chunks = RecursiveSplitter(chunk_size=20, chunk_overlap=0).split_documents([lc_doc("one two three. four five six.")])
    assert all(type(c) is Document for c in chunks) and chunks[0].metadata["source"] == "a.txt"


def test_index_store_and_bm25_take_langchain_documents(tmp_path):
    store = InMemoryStore(HashEmbeddings())
    records = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="lc")
    result = index([lc_doc("Busan is a port city."), lc_doc("Seoul is the capital.")], store, records)
    assert result.added == 2 and store.count() == 2
    assert store.add([lc_doc("Incheon has the airport.", id="i1")]) == ["i1"]
    assert BM25Retriever.from_documents([lc_doc("Busan port"), lc_doc("Seoul capital")], k=1).invoke("port")[0].text == "Busan port"


def test_directory_loader_with_a_langchain_loader_per_suffix(tmp_path):
    (tmp_path / "a.md").write_text("Busan is a port city.")
    docs = DirectoryLoader(tmp_path, loader_for_suffix={".md": LangChainStyleLoader}).load()
    assert [type(d) for d in docs] == [Document] and docs[0].text == "Busan is a port city."


def test_parent_child_indexing_with_langchain_documents_and_splitter(tmp_path):
    splitters = pytest.importorskip("langchain_text_splitters")
    store = InMemoryStore(HashEmbeddings())
    records = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="pc")
    result = index_parent_child(
        [lc_doc("Busan is a port city. It has beaches. " * 3)],
        child_splitter=splitters.RecursiveCharacterTextSplitter(chunk_size=40, chunk_overlap=0),
        parent_splitter=splitters.RecursiveCharacterTextSplitter(chunk_size=80, chunk_overlap=0),
        store=store,
        docstore=InMemoryDocStore(),
        records=records,
    )
    assert result.added > 2 and all(type(d) is Document for d in store.get(list(store.ids())))
