from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from maru.errors import IndexingError
from maru.rag import records as records_module
from maru.rag.records import RecordManager, make_engine, upsert_rows


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


@pytest.fixture
def rm(url: str) -> RecordManager:
    manager = RecordManager(url, namespace="ns")
    yield manager
    manager.close()


def test_upsert_existing_count_and_delete(rm):
    t = rm.get_time()
    rm.upsert([("a", "s1", "h1"), ("b", "s1", "h2"), ("c", None, "h3")], t)
    assert rm.count() == 3
    assert rm.existing(["a", "c", "zzz"]) == {"a": "h1", "c": "h3"}
    assert rm.existing_with_times(["b"]) == {"b": ("h2", t)}
    rm.upsert([("a", "s2", "h9")], t + 1)  # overwrite: hash, source and time
    assert rm.existing(["a"]) == {"a": "h9"}
    assert rm.list_ids(source_ids=["s2"]) == ["a"]
    assert rm.delete(["a", "b", "missing"]) == 2
    assert rm.list_ids() == ["c"]


def test_list_ids_filters_by_time_source_and_limit(rm):
    rm.upsert([("old1", "s1", "h"), ("old2", "s2", "h"), ("none", None, "h")], 10.0)
    rm.upsert([("new1", "s1", "h")], 20.0)
    assert sorted(rm.list_ids(before=15.0)) == ["none", "old1", "old2"]
    assert sorted(rm.list_ids(source_ids=["s1"])) == ["new1", "old1"]
    assert rm.list_ids(before=15.0, source_ids=["s1"]) == ["old1"]
    assert rm.list_ids(source_ids=[None]) == ["none"]
    assert sorted(rm.list_ids(source_ids=["s2", None])) == ["none", "old2"]
    assert len(rm.list_ids(limit=2)) == 2
    assert len(rm.list_ids(source_ids=["s1", "s2"], limit=1)) == 1
    assert rm.list_ids(source_ids=[]) == []


def test_get_time_is_after_every_stored_time_even_if_the_clock_steps_back(rm, monkeypatch):
    rm.upsert([("a", None, "h")], 5_000_000_000.0)  # a record from "the future"
    monkeypatch.setattr(records_module.time, "time", lambda: 1_000.0)
    assert rm.get_time() > 5_000_000_000.0
    fresh = RecordManager(rm.url, namespace="other")  # namespaces have their own clocks
    assert fresh.get_time() == 1_000.0
    fresh.close()


def test_namespaces_are_isolated(rm, url):
    other = RecordManager(url, namespace="other")
    rm.upsert([("a", "s", "h1")], 1.0)
    other.upsert([("a", "s", "h2"), ("b", "s", "h3")], 1.0)
    assert rm.existing(["a", "b"]) == {"a": "h1"}
    assert rm.count() == 1 and other.count() == 2
    assert rm.known(["a", "b"]) == {"a"}
    assert rm.known(["a", "b", "c"], any_namespace=True) == {"a", "b"}
    other.delete(["a"])
    assert rm.existing(["a"]) == {"a": "h1"}
    other.close()


def test_invalidate_blanks_the_hash_and_keeps_the_time(rm):
    rm.upsert([("a", "s", "h1"), ("b", "s", "h2")], 7.0)
    rm.invalidate(["a"])
    assert rm.existing_with_times(["a", "b"]) == {"a": ("", 7.0), "b": ("h2", 7.0)}


def test_many_ids_are_chunked(rm, monkeypatch):
    monkeypatch.setattr(records_module, "CHUNK", 7)
    ids = [f"id{i}" for i in range(1234)]
    rm.upsert([(i, "s", "h") for i in ids], 1.0)
    assert rm.count() == 1234
    assert len(rm.existing(ids)) == 1234
    assert len(rm.known(ids)) == 1234
    assert len(rm.list_ids(source_ids=[f"x{i}" for i in range(1200)] + ["s"])) == 1234
    rm.invalidate(ids)
    assert set(rm.existing(ids).values()) == {""}
    assert rm.delete(ids) == 1234
    assert rm.count() == 0


def test_sqlite_file_uses_wal_and_survives_reopening(rm, url, tmp_path):
    rm.upsert([("a", "s", "h")], 1.0)
    rm.close()
    again = RecordManager(url, namespace="ns")
    assert again.existing(["a"]) == {"a": "h"}
    again.close()
    with sqlite3.connect(tmp_path / "records.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_is_shared_across_threads():
    import threading

    rm = RecordManager("sqlite://", namespace="ns")
    thread = threading.Thread(target=lambda: rm.upsert([("a", None, "h")], 1.0))
    thread.start()
    thread.join()
    assert rm.existing(["a"]) == {"a": "h"}
    rm.close()


def test_portable_upsert_fallback_matches_native(url):
    """Dialects without a native upsert get select + update + insert; same result."""
    engine = make_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "t", meta,
        sa.Column("ns", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("v", sa.Integer),
    )
    meta.create_all(engine)
    engine.dialect.name = "somedb"  # force the generic path
    with engine.begin() as conn:
        upsert_rows(conn, table, [{"ns": "n", "id": "a", "v": 1}, {"ns": "n", "id": "b", "v": 2}], ("ns", "id"))
        upsert_rows(conn, table, [{"ns": "n", "id": "a", "v": 10}, {"ns": "n", "id": "c", "v": 3}], ("ns", "id"))
        upsert_rows(conn, table, [], ("ns", "id"))
        rows = sorted(conn.execute(sa.select(table.c.id, table.c.v)).all())
    assert rows == [("a", 10), ("b", 2), ("c", 3)]
    engine.dispose()


def test_bad_namespace_and_unusable_database(tmp_path):
    with pytest.raises(ValueError, match="namespace"):
        RecordManager("sqlite://", namespace="")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(IndexingError, match="reachable and writable"):
        RecordManager(f"sqlite:///{folder}")
