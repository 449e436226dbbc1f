"""A damaged cache or trace store is never lost in silence: an empty (0-byte) or garbled SQLite file
is kept aside as ``<name>.damaged-<time>`` with one loud warning, and a new file takes its place;
a file that is not SQLite at all is left where it is."""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from maru import runnable
from maru._sqlite import DamagedFileWarning
from maru.cache import SQLiteCache
from maru.cache.base import CachedResponse, CacheRequest
from maru.errors import CacheError, TraceStoreError
from maru.messages import AIMessage, HumanMessage
from maru.tracing import RunStore, tracing
from maru.tracing.run import Run


def make_trace(trace_id: str, metadata: dict | None = None) -> list[Run]:
    return [Run(trace_id, trace_id, None, "old", "chain", 1.0, 2.0, "in", "out", metadata=metadata or {})]


def _old(path: Path) -> Path:
    """Make the file look as it would an hour after it was damaged (not just created)."""
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return _old(path)


def _garble(path: Path) -> bytes:
    """Overwrite everything after the first two pages with garbage; the file still starts as a
    SQLite database. Returns the damaged bytes."""
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    for i in range(2 * 4096, len(data)):
        data[i] = (i * 7 + 13) % 251
    path.write_bytes(bytes(data))
    return bytes(data)


def _aside(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.damaged-") and not
                  p.name.endswith(("-wal", "-shm")))


def _full_store(path: Path) -> None:
    store = RunStore(path)
    for i in range(60):
        store.write(make_trace(f"old-{i:03d}", metadata={"pad": "x" * 2000}))
    conn = store._conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def test_an_empty_trace_store_is_kept_aside_with_a_warning(tmp_path: Path) -> None:
    path = _empty(tmp_path / "traces.sqlite")
    with pytest.warns(DamagedFileWarning, match=r"the trace store .*traces\.sqlite was empty \(0 bytes\); kept it as"):
        store = RunStore(path)
    [aside] = _aside(path)
    assert aside.stat().st_size == 0
    store.write(make_trace("new"))
    assert [r.trace_id for r in store.list_traces()] == ["new"]
    store.close()


def test_an_empty_cache_is_kept_aside_with_a_warning(tmp_path: Path) -> None:
    path = _empty(tmp_path / "cache.sqlite")
    with pytest.warns(DamagedFileWarning, match="the SQLite cache .*was empty"):
        cache = SQLiteCache(path)
    assert len(_aside(path)) == 1
    request = CacheRequest("m", [HumanMessage("hi")], {"model": "m"})
    cache.update(request, CachedResponse(AIMessage("hello")))
    assert cache.lookup(request) is not None
    cache.close()


def test_a_new_empty_file_another_process_is_creating_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    path.write_bytes(b"")  # just now: another writer may be setting it up
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedFileWarning)
        RunStore(path).close()
    assert _aside(path) == []


def test_a_garbled_trace_store_keeps_new_traces_and_the_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _full_store(path)
    damaged = _garble(path)
    with pytest.warns(DamagedFileWarning, match="the trace store .* is damaged"), tracing([RunStore(path)]):
        runnable(lambda x: x + 1, name="after").invoke(1)
    [aside] = _aside(path)
    assert aside.read_bytes()[: len(damaged)] == damaged
    store = RunStore(path, create=False)
    assert [r.name for r in store.list_traces()] == ["after"]
    store.close()


def test_a_store_whose_schema_page_is_garbled_is_set_aside_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _full_store(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = bytes((i * 31 + 7) % 256 for i in range(100, 4096))  # past the 100-byte header
    path.write_bytes(bytes(data))
    with pytest.warns(DamagedFileWarning, match="is damaged"):
        store = RunStore(path)
    store.write(make_trace("new"))
    assert [r.trace_id for r in store.list_traces()] == ["new"]
    assert _aside(path)[0].read_bytes()[:4096] == bytes(data[:4096])
    store.close()


def test_a_garbled_cache_is_a_miss_then_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = SQLiteCache(path)
    requests = [CacheRequest("m", [HumanMessage(f"q{i}")], {"model": "m"}) for i in range(300)]
    for request in requests:
        cache.update(request, CachedResponse(AIMessage("a" * 500)))
    cache._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    _garble(path)
    with pytest.warns(DamagedFileWarning, match="the SQLite cache .* is damaged"):
        cache = SQLiteCache(path)
        assert [cache.lookup(r) for r in requests[-5:]] == [None] * 5
        cache.update(requests[0], CachedResponse(AIMessage("fresh")))
    assert cache.lookup(requests[0]) is not None
    assert len(_aside(path)) == 1
    cache.close()


def test_a_file_that_is_not_sqlite_is_never_moved(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("my notes, not a database\n" * 200)
    _old(path)
    with pytest.raises(TraceStoreError, match="is corrupt or not a SQLite database"):
        RunStore(path)
    with pytest.raises(CacheError, match="is corrupt or not a SQLite database"):
        SQLiteCache(path)
    assert path.read_text().startswith("my notes") and _aside(path) == []


def test_a_reader_never_moves_a_damaged_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    _full_store(path)
    _garble(path)
    with pytest.raises(TraceStoreError, match="corrupt"):
        store = RunStore(path, create=False)
        for i in range(60):
            store.get_trace(f"old-{i:03d}")
    assert _aside(path) == []


def test_other_errors_do_not_count_as_damage(tmp_path: Path) -> None:
    from maru._sqlite import is_corruption

    assert not is_corruption(sqlite3.ProgrammingError("Cannot operate on a closed database."))
    assert not is_corruption(sqlite3.OperationalError("database is locked"))
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
