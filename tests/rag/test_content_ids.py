"""Chunk ids come from content (source, text, occurrence): an edit re-embeds only what changed (issue 15.5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _indexing_support import HashEmbeddings, MemoryStore

from maru.rag.documents import Document
from maru.rag.indexing import IndexResult, index
from maru.rag.records import RecordManager
from maru.rag.splitters import RecursiveSplitter

PARAGRAPHS = [f"Paragraph {i} talks about wing {i} and its boundary layer at Mach {i}." for i in range(12)]


@pytest.fixture
def records(tmp_path: Path):
    rm = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="ids")
    yield rm
    rm.close()


def chunks_of(paragraphs: list[str]) -> list[Document]:
    doc = Document("\n\n".join(paragraphs), {"source": "report.txt"})
    return RecursiveSplitter(chunk_size=80, chunk_overlap=0).split_documents([doc], positions=False)


def test_a_paragraph_added_at_the_top_embeds_only_that_paragraph(records):
    emb = HashEmbeddings()
    store = MemoryStore(emb)
    assert index(chunks_of(PARAGRAPHS), store, records, cleanup="incremental") == IndexResult(added=12)
    emb.texts.clear()
    result = index(chunks_of(["A new opening paragraph."] + PARAGRAPHS), store, records, cleanup="incremental")
    assert emb.texts == ["A new opening paragraph."]
    assert result == IndexResult(added=1, skipped=12)


def test_an_edited_chunk_replaces_the_old_one_under_a_new_id(records):
    emb = HashEmbeddings()
    store = MemoryStore(emb)
    index(chunks_of(PARAGRAPHS), store, records, cleanup="incremental")
    edited = PARAGRAPHS[:5] + ["Paragraph five, rewritten."] + PARAGRAPHS[6:]
    emb.texts.clear()
    result = index(chunks_of(edited), store, records, cleanup="incremental")
    assert emb.texts == ["Paragraph five, rewritten."]
    assert result == IndexResult(added=1, skipped=11, deleted=1)
    assert {d.text for d in store.get(list(store.ids()))} == set(edited)
    assert set(store.ids()) == set(records.list_ids())


def test_repeated_text_in_a_source_keeps_every_occurrence(records):
    store = MemoryStore(HashEmbeddings())
    docs = [Document("same", {"source": "a"}), Document("same", {"source": "a"}), Document("same", {"source": "b"})]
    assert index(docs, store, records) == IndexResult(added=3)
    assert index(docs[:1] + docs[2:], store, records, cleanup="incremental") == IndexResult(skipped=2, deleted=1)
    assert store.count() == 2


def test_positions_make_every_later_chunk_change(records):
    """With positions (the default), shifted chunks have new metadata and are rewritten: why
    the knowledge base leaves positions out."""
    doc = Document("\n\n".join(PARAGRAPHS), {"source": "r"})
    with_positions = RecursiveSplitter(chunk_size=80, chunk_overlap=0).split_documents([doc])
    assert {"start_index", "end_index", "chunk_index"} <= set(with_positions[0].metadata)
    without = RecursiveSplitter(chunk_size=80, chunk_overlap=0).split_documents([doc], positions=False)
    assert [d.text for d in without] == [d.text for d in with_positions]
    assert all(d.metadata == {"source": "r"} for d in without)
