from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _indexing_support import HashEmbeddings, MemoryStore, SQLiteTestStore, corpus

from maru.errors import IndexingError
from maru.rag.documents import Document
from maru.rag.indexing import IndexResult, aindex, delete_sources, index, reconcile
from maru.rag.records import RecordManager
from maru.rag.stores.memory import InMemoryStore

HERE = Path(__file__).parent


@pytest.fixture
def emb() -> HashEmbeddings:
    return HashEmbeddings()


@pytest.fixture
def store(emb: HashEmbeddings) -> InMemoryStore:
    return MemoryStore(emb)


@pytest.fixture
def records(tmp_path: Path) -> RecordManager:
    rm = RecordManager(f"sqlite:///{tmp_path / 'records.db'}", namespace="test")
    yield rm
    rm.close()


def docs_of(source: str, texts: list[str]) -> list[Document]:
    return [Document(t, {"source": source}) for t in texts]


def texts(store: InMemoryStore) -> set[str]:
    return {d.text for d in store.get(list(store.ids()))}


def assert_in_step(store: Any, records: RecordManager) -> None:
    ids = list(store.ids())
    assert len(ids) == len(set(ids))
    assert set(ids) == set(records.list_ids())
    hashes = records.existing(ids)
    for doc in store.get(ids):
        assert hashes[doc.id] == doc.hash()


# ---------------------------------------------------------------------------- basics


def test_first_index_adds_and_unchanged_rerun_skips_without_embedding(store, records, emb):
    docs = docs_of("a", ["one", "two", "three"]) + docs_of("b", ["four"])
    assert index(docs, store, records) == IndexResult(added=4)
    assert emb.calls == 1 and len(emb.texts) == 4
    assert texts(store) == {"one", "two", "three", "four"}

    again = index(docs, store, records, cleanup="incremental")
    assert again == IndexResult(skipped=4)
    assert emb.calls == 1 and len(emb.texts) == 4  # the embedder never saw a skipped document
    assert store.count() == 4
    assert_in_step(store, records)


def test_changed_document_gets_a_new_id_and_cleanup_drops_the_old_one(store, records, emb):
    index(docs_of("a", ["one", "two"]), store, records)
    ids_before = set(store.ids())
    result = index(docs_of("a", ["one", "TWO"]), store, records, cleanup="incremental")
    assert result == IndexResult(added=1, skipped=1, deleted=1)
    assert emb.texts[-1:] == ["TWO"] and len(emb.texts) == 3
    assert len(set(store.ids()) & ids_before) == 1  # content ids: "one" kept its id
    assert texts(store) == {"one", "TWO"}
    assert_in_step(store, records)


def test_metadata_change_counts_as_update(store, records):
    index([Document("x", {"source": "a", "v": 1})], store, records)
    result = index([Document("x", {"source": "a", "v": 2})], store, records)
    assert result == IndexResult(updated=1)
    assert store.get(list(store.ids()))[0].metadata["v"] == 2


def test_user_set_ids_are_kept(store, records):
    docs = [Document("alpha", {"source": "a"}, id="doc-1"), Document("beta", {"source": "a"}, id="doc-2")]
    assert index(docs, store, records).added == 2
    assert set(store.ids()) == {"doc-1", "doc-2"}
    changed = [Document("ALPHA", {"source": "a"}, id="doc-1"), docs[1]]
    assert index(changed, store, records) == IndexResult(updated=1, skipped=1)
    assert store.get(["doc-1"])[0].text == "ALPHA"
    assert set(records.list_ids()) == {"doc-1", "doc-2"}


def test_id_key_takes_ids_from_metadata(store, records):
    docs = [Document("alpha", {"source": "a", "key": "k1"}), Document("beta", {"source": "a", "key": "k2"})]
    index(docs, store, records, id_key="key")
    assert set(store.ids()) == {"k1", "k2"}
    with pytest.raises(IndexingError, match="id_key"):
        index([Document("gamma", {"source": "a"})], store, records, id_key="key")


def test_duplicate_ids_in_a_run_last_wins(store, records, emb):
    docs = [Document("first", {"source": "a"}, id="x"), Document("second", {"source": "a"}, id="x")]
    assert index(docs, store, records) == IndexResult(added=1)
    assert store.get(["x"])[0].text == "second"
    # across batches: the later batch rewrites, counted once
    result = index(docs + [Document("third", {"source": "a"}, id="x")], store, records, batch_size=2)
    assert store.get(["x"])[0].text == "third"
    assert store.count() == 1 and records.count() == 1
    assert result.added == 0 and result.updated + result.skipped == 1


def test_force_update_rewrites_everything(store, records, emb):
    docs = docs_of("a", ["one", "two"])
    index(docs, store, records)
    assert index(docs, store, records, force_update=True) == IndexResult(updated=2)
    assert len(emb.texts) == 4


def test_sourceless_documents_get_content_ids(store, records):
    docs = [Document("same"), Document("same"), Document("other")]
    assert index(docs, store, records) == IndexResult(added=2)  # identical documents collapse
    assert texts(store) == {"same", "other"}
    assert index(docs, store, records, cleanup="full") == IndexResult(skipped=2)


@pytest.mark.parametrize("cleanup", ["incremental", "scoped"])
def test_missing_source_is_an_error_for_source_scoped_cleanup(store, records, cleanup):
    with pytest.raises(IndexingError, match="source_id_key"):
        index([Document("x", {"src": "a"})], store, records, cleanup=cleanup)
    # a callable source_id_key finds it
    result = index([Document("x", {"src": "a"})], store, records, cleanup=cleanup,
                   source_id_key=lambda d: d.metadata["src"])
    assert result.added == 1
    assert records.list_ids(source_ids=["a"]) == list(store.ids())


def test_bad_arguments(store, records):
    with pytest.raises(ValueError, match="cleanup"):
        index([], store, records, cleanup="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        index([], store, records, batch_size=0)
    with pytest.raises(ValueError, match="cleanup_batch_size"):
        index([], store, records, cleanup_batch_size=0)


def test_index_result_reads_like_a_dict():
    result = IndexResult(added=1, updated=2, skipped=3, deleted=4)
    assert result["num_added"] == 1 and result["updated"] == 2 and result["num_deleted"] == 4
    assert dict(result)["num_skipped"] == 3  # dict() reads keys() and []
    assert result.as_dict() == {"added": 1, "updated": 2, "skipped": 3, "deleted": 4}
    with pytest.raises(KeyError):
        result["num_things"]


def test_aindex(store, records):
    result = asyncio.run(aindex(docs_of("a", ["one"]), store, records, cleanup="incremental"))
    assert result == IndexResult(added=1)


# ---------------------------------------------------------------------------- cleanup modes


def test_cleanup_none_deletes_nothing(store, records):
    index(docs_of("a", ["1", "2", "3"]) + docs_of("b", ["4"]), store, records)
    result = index(docs_of("a", ["1"]), store, records)
    assert result == IndexResult(skipped=1)
    assert texts(store) == {"1", "2", "3", "4"}


def test_incremental_deletes_what_a_seen_source_no_longer_has(store, records):
    index(docs_of("a", ["1", "2", "3"]) + docs_of("b", ["4", "5"]), store, records)
    result = index(docs_of("a", ["1", "2x"]), store, records, cleanup="incremental")
    assert result == IndexResult(added=1, skipped=1, deleted=2)  # "2x" is new; "2" and "3" went
    # source b produced nothing, so incremental cannot know it is gone: it stays
    assert texts(store) == {"1", "2x", "4", "5"}
    assert_in_step(store, records)
    # a deleted source is removed explicitly
    assert delete_sources(["b"], store, records) == IndexResult(deleted=2)
    assert texts(store) == {"1", "2x"}
    assert_in_step(store, records)


def test_incremental_cleans_each_source_as_soon_as_it_is_finished(store, records):
    index(docs_of("a", ["a1", "a2", "a3", "a4"]) + docs_of("b", ["b1", "b2", "b3"]), store, records)
    seen_mid_run: list[set[str]] = []

    def stream() -> Iterator[Document]:
        yield from docs_of("a", ["a1", "a2"])  # batch 1 (batch_size 2): source a, still open
        yield from docs_of("b", ["b1"])  # batch 2 starts: a is finished after this batch
        yield Document("b2", {"source": "b"})
        seen_mid_run.append(texts(store))  # drawn while batch 3 is assembled
        yield Document("b3", {"source": "b"})

    result = index(stream(), store, records, cleanup="incremental", batch_size=2)
    assert seen_mid_run == [{"a1", "a2", "b1", "b2", "b3"}]  # a3, a4 already gone mid-run
    assert result == IndexResult(skipped=5, deleted=2)


def test_a_source_spanning_batches_is_not_cleaned_early(store, records, emb):
    index(docs_of("a", [f"a{i}" for i in range(7)]), store, records)
    result = index(docs_of("a", [f"a{i}" for i in range(7)]), store, records,
                   cleanup="incremental", batch_size=2)
    assert result == IndexResult(skipped=7)
    assert len(emb.texts) == 7  # nothing deleted and re-added


def test_scoped_deletes_only_at_the_end(store, records):
    index(docs_of("a", ["a1", "a2", "a3"]) + docs_of("b", ["b1"]) + docs_of("c", ["c1"]), store, records)
    seen_mid_run: list[set[str]] = []

    def stream() -> Iterator[Document]:
        yield from docs_of("a", ["a1"])
        yield from docs_of("b", ["b1"])
        seen_mid_run.append(texts(store))
        yield Document("b2", {"source": "b"})

    result = index(stream(), store, records, cleanup="scoped", batch_size=1)
    assert {"a2", "a3"} <= seen_mid_run[0]  # old version still readable during the run
    assert result == IndexResult(added=1, skipped=2, deleted=2)
    assert texts(store) == {"a1", "b1", "b2", "c1"}  # c was not in the run: kept
    assert_in_step(store, records)


def test_full_deletes_everything_not_in_the_run(store, records):
    index(docs_of("a", ["a1", "a2"]) + docs_of("b", ["b1"]) + [Document("loose")], store, records)
    result = index(docs_of("a", ["a1"]) + [Document("new")], store, records, cleanup="full")
    assert result == IndexResult(added=1, skipped=1, deleted=3)
    assert texts(store) == {"a1", "new"}
    assert_in_step(store, records)


def test_full_reconciles_orphans_and_lost_entries(store, records):
    index(docs_of("a", ["a1", "a2"]), store, records)
    store.upsert([Document("orphan", {}, "no-record")])  # e.g. a crash after the store write
    lost = next(iter(store.ids()))
    store.delete([lost])  # e.g. removed behind the indexer's back
    result = index(docs_of("a", ["a1", "a2"]), store, records, cleanup="full")
    assert result == IndexResult(updated=1, skipped=1)  # the lost one is rewritten
    assert texts(store) == {"a1", "a2"}
    assert_in_step(store, records)


def test_reconcile_keeps_ids_recorded_in_other_namespaces(store, records, tmp_path):
    other = RecordManager(records.url, namespace="other")
    index(docs_of("x", ["x1"]), store, other)
    index(docs_of("a", ["a1"]), store, records)
    store.upsert([Document("orphan", {}, "no-record")])
    assert reconcile(store, records) == 1
    assert texts(store) == {"x1", "a1"}
    other.close()


def test_reconcile_needs_a_store_that_lists_ids(records):
    class Opaque(MemoryStore):
        def ids(self) -> Iterator[str]:
            raise NotImplementedError

    with pytest.raises(IndexingError, match="ids"):
        reconcile(Opaque(HashEmbeddings()), records)
    # full cleanup still works, it only skips reconciling
    assert index(docs_of("a", ["1"]), Opaque(HashEmbeddings()), records, cleanup="full").added == 1


def test_deletes_are_batched(store, records):
    index(docs_of("a", [f"a{i}" for i in range(36)]), store, records)
    calls: dict[str, list[int]] = {"store": [], "records": []}
    real_store_delete, real_records_delete = store.delete, records.delete

    def store_delete(ids):
        calls["store"].append(len(ids))
        return real_store_delete(ids)

    def records_delete(ids):
        calls["records"].append(len(ids))
        return real_records_delete(ids)

    store.delete = store_delete  # type: ignore[method-assign]
    records.delete = records_delete  # type: ignore[method-assign]
    result = index(docs_of("a", ["a0"]), store, records, cleanup="incremental", cleanup_batch_size=10)
    assert result.deleted == 35
    assert sorted(calls["store"]) == [5, 10, 10, 10]
    assert sorted(calls["records"]) == [5, 10, 10, 10]
    assert texts(store) == {"a0"}


# ---------------------------------------------------------------------------- crash ordering, in process


def test_failure_between_store_write_and_record_write_converges(store, records, emb):
    real = records.upsert

    def boom(recs, time):
        raise RuntimeError("killed")

    records.upsert = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        index(docs_of("a", ["1", "2"]), store, records)
    assert store.count() == 2 and records.count() == 0
    records.upsert = real  # type: ignore[method-assign]
    assert index(docs_of("a", ["1", "2"]), store, records, cleanup="incremental").added == 2
    assert store.count() == 2
    assert_in_step(store, records)


def test_failure_mid_delete_then_document_returns_is_rewritten(store, records):
    index(docs_of("a", ["1", "2"]), store, records)
    real = records.delete

    def boom(ids):
        raise RuntimeError("killed")

    records.delete = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        index(docs_of("a", ["1"]), store, records, cleanup="incremental")
    records.delete = real  # type: ignore[method-assign]
    assert texts(store) == {"1"} and records.count() == 2  # store deleted, record left (invalid)
    # the same document comes back unchanged: it must be rewritten, not skipped
    result = index(docs_of("a", ["1", "2"]), store, records, cleanup="incremental")
    assert result == IndexResult(updated=1, skipped=1)
    assert texts(store) == {"1", "2"}
    assert_in_step(store, records)


# ---------------------------------------------------------------------------- crash test, subprocess


def local_store_available() -> bool:
    try:
        import maru.rag.stores.local  # noqa: F401
    except ImportError:
        return False
    return True


def run_indexer(tmp: Path, name: str, cleanup: str, local: bool, crash: str | None = None,
                kill_after: int | None = None) -> int:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MARU_TEST_CRASH", None)
    if crash:
        env["MARU_TEST_CRASH"] = crash
    args = [sys.executable, str(HERE / "_indexing_support.py"), str(tmp / "store"),
            f"sqlite:///{tmp / 'records.db'}", name, cleanup] + (["local"] if local else [])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == f"upsert {kill_after}":
                proc.send_signal(signal.SIGKILL)
                break
    out, err = proc.communicate(timeout=120)
    if crash is None and kill_after is None:
        assert proc.returncode == 0, err
    return proc.returncode


def check_converged(tmp: Path, name: str, local: bool) -> None:
    from _indexing_support import open_store

    store = open_store(str(tmp / "store"), local)
    records = RecordManager(f"sqlite:///{tmp / 'records.db'}", namespace="crash")
    try:
        expected = corpus(name)
        ids = list(store.ids())
        assert len(ids) == len(set(ids)), "duplicate ids in the store"
        assert set(ids) == set(records.list_ids()), "store and records disagree"
        assert store.count() == len(expected) == records.count()
        stored = store.get(ids)
        assert sorted(d.text for d in stored) == sorted(d.text for d in expected)
        hashes = records.existing(ids)
        assert all(hashes[d.id] == d.hash() for d in stored)
    finally:
        records.close()
        store.close()


def unrecorded(tmp: Path, local: bool) -> int:
    """How many store entries have no record (what a crash leaves)."""
    from _indexing_support import open_store

    store = open_store(str(tmp / "store"), local)
    with RecordManager(f"sqlite:///{tmp / 'records.db'}", namespace="crash") as records:
        n = len(set(store.ids()) - set(records.list_ids()))
    store.close()
    return n


def crash_scenario(tmp: Path, local: bool) -> None:
    # 1. killed halfway through the 7th store write of the very first run
    assert run_indexer(tmp, "A", "incremental", local, crash="store:7") == -signal.SIGKILL
    assert unrecorded(tmp, local) == 50  # 6 batches recorded, half of the 7th written
    run_indexer(tmp, "A", "incremental", local)
    check_converged(tmp, "A", local)
    # 2. changed corpus, killed between a store write and its record write
    assert run_indexer(tmp, "B", "incremental", local, crash="record:5") == -signal.SIGKILL
    run_indexer(tmp, "B", "incremental", local)
    check_converged(tmp, "B", local)
    # 3. killed between a cleanup's store delete and its record delete
    assert run_indexer(tmp, "B2", "incremental", local, crash="delete:3") == -signal.SIGKILL
    run_indexer(tmp, "B2", "incremental", local)
    check_converged(tmp, "B2", local)
    # 4. killed from outside after the 3rd store write, full cleanup
    assert run_indexer(tmp, "C", "full", local, kill_after=3) == -signal.SIGKILL
    run_indexer(tmp, "C", "full", local)
    check_converged(tmp, "C", local)
    # 5. a crashed run whose documents never come back leaves orphans; full reconciles them
    assert run_indexer(tmp, "D", "none", local, crash="record:3") == -signal.SIGKILL
    assert unrecorded(tmp, local) == 100
    run_indexer(tmp, "C", "full", local)
    check_converged(tmp, "C", local)


def test_crash_at_any_point_converges_sqlite_store(tmp_path):
    crash_scenario(tmp_path, local=False)


@pytest.mark.slow
@pytest.mark.skipif(not local_store_available(), reason="LocalStore not available")
def test_crash_at_any_point_converges_local_store(tmp_path):
    crash_scenario(tmp_path, local=True)


def test_sqlite_test_store_round_trip(tmp_path):
    store = SQLiteTestStore(str(tmp_path / "s.db"), HashEmbeddings())
    store.upsert([Document("x", {"a": 1}, "1")])
    assert [d.text for d, _ in store.search("x", 1)] == ["x"]
    store.close()
