"""Every SQLite-backed store creates the folder of its file, as the cache and trace store do (issue 15.11)."""

from __future__ import annotations

from pathlib import Path

from maru.rag.docstore import SQLDocStore
from maru.rag.documents import Document
from maru.rag.records import RecordManager


def test_record_manager_creates_missing_folders(tmp_path: Path):
    path = tmp_path / "a" / "b" / "records.sqlite"
    with RecordManager(f"sqlite:///{path}") as records:
        records.upsert([("x", "s", "h")], records.get_time())
        assert records.count() == 1
    assert path.is_file()


def test_sql_docstore_creates_missing_folders(tmp_path: Path):
    path = tmp_path / "a" / "b" / "docs.sqlite"
    with SQLDocStore(f"sqlite:///{path}") as docs:
        docs.mset([Document("t", id="1")])
        assert len(docs) == 1
    assert path.is_file()
