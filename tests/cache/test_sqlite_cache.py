"""SQLiteCache: persistence, TTL, threads, processes, and clear errors for bad files."""

import asyncio
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from maru.cache import SQLiteCache
from maru.cache.sqlite import SCHEMA_VERSION
from maru.errors import CacheError

from .conftest import FakeClock, request, response, streamed_response


def test_round_trip_and_persistence_across_instances(tmp_path):
    path = tmp_path / "deep" / "er" / "cache.sqlite"  # parents are created
    cache = SQLiteCache(path)
    req = request("capital of Korea?")
    assert cache.lookup(req) is None
    cache.update(req, response("Seoul"))
    assert cache.lookup(req).message.content == "Seoul"
    cache.close()

    again = SQLiteCache(str(path))
    hit = again.lookup(req)
    assert (
        hit is not None and hit.message.content == "Seoul" and hit.message.usage.input_tokens == 5
    )
    assert again.lookup(request("capital of Japan?")) is None
    assert len(again) == 1


def test_wal_mode_and_schema_version(tmp_path):
    path = tmp_path / "c.sqlite"
    SQLiteCache(path).update(request("q"), response())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute(
            "SELECT value FROM maru_cache_meta WHERE name = 'schema_version'"
        ).fetchone() == (str(SCHEMA_VERSION),)
        key, created, expires = conn.execute(
            "SELECT key, created_at, expires_at FROM maru_cache"
        ).fetchone()
    assert key == request("q").key and created > 0 and expires is None


def test_update_overwrites_and_clear_empties(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    req = request("q")
    cache.update(req, response("one"))
    cache.update(req, response("two"))
    assert cache.lookup(req).message.content == "two" and len(cache) == 1
    cache.clear()
    assert cache.lookup(req) is None and len(cache) == 0


def test_ttl_with_an_injected_clock_and_lazy_purge(tmp_path):
    clock = FakeClock()
    path = tmp_path / "c.sqlite"
    cache = SQLiteCache(path, ttl=60, clock=clock)
    old, new = request("old"), request("new")
    cache.update(old, response("old"))
    clock.advance(59)
    assert cache.lookup(old) is not None
    clock.advance(1)
    assert cache.lookup(old) is None  # expired: ignored ...

    def rows():
        with sqlite3.connect(path) as conn:
            return {k for (k,) in conn.execute("SELECT key FROM maru_cache")}

    assert old.key not in rows()  # ... and deleted by the lookup that met it
    cache.update(old, response("old"))
    cache.update(new, response("new"))
    clock.advance(120)
    assert rows() == {old.key, new.key}
    cache.update(request("third"), response())  # a write after the purge interval sweeps
    assert rows() == {request("third").key}


def test_entries_written_with_ttl_expire_for_readers_without_one(tmp_path):
    clock = FakeClock()
    SQLiteCache(tmp_path / "c.sqlite", ttl=5, clock=clock).update(request("q"), response())
    reader = SQLiteCache(tmp_path / "c.sqlite", clock=clock)
    assert reader.lookup(request("q")) is not None
    clock.advance(5)
    assert reader.lookup(request("q")) is None


def test_streamed_response_with_tool_call_chunks_round_trips(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    stored = streamed_response()
    cache.update(request("weather?"), stored)
    hit = SQLiteCache(tmp_path / "c.sqlite").lookup(request("weather?"))
    assert hit == stored
    assert [tc.args for tc in hit.message.tool_calls] == [{"city": "서울"}, {"tz": "KST"}]


def test_corrupt_file_raises_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(CacheError) as info:
        SQLiteCache(path)
    message = str(info.value)
    assert str(path) in message
    assert "delete or move" in message and "corrupt or not a SQLite database" in message


def test_file_corrupted_while_open_raises_on_lookup(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = SQLiteCache(path)
    cache.update(request("q"), response())
    cache.close()
    path.write_bytes(b"this is not a database" * 500)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"cache.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(CacheError, match="delete or move"):
        cache.lookup(request("q"))


def test_a_foreign_database_or_another_schema_version_is_refused(tmp_path):
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(CacheError, match="something else") as info:
        SQLiteCache(foreign)
    assert str(foreign) in str(info.value)

    newer = tmp_path / "newer.sqlite"
    SQLiteCache(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE maru_cache_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(CacheError, match="schema version 99") as info:
        SQLiteCache(newer)
    assert str(newer) in str(info.value) and "delete or move" in str(info.value)


def test_a_directory_as_path_and_memory_paths_are_refused(tmp_path):
    with pytest.raises(CacheError, match=str(tmp_path)):
        SQLiteCache(tmp_path)
    with pytest.raises(ValueError, match="InMemoryCache"):
        SQLiteCache(":memory:")


def test_unreadable_row_is_a_miss_and_gets_overwritten(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = SQLiteCache(path)
    cache.update(request("q"), response())
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE maru_cache SET value = '{broken'")
    assert cache.lookup(request("q")) is None
    cache.update(request("q"), response("fixed"))
    assert cache.lookup(request("q")).message.content == "fixed"


def test_threads_use_their_own_connections(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []
    connections: set[int] = set()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(100):
                cache.update(request(f"t{n}-{i}"), response(f"{n}:{i}"))
                hit = cache.lookup(request(f"t{(n + 1) % 8}-{i // 2}"))
                assert hit is None or hit.message.content == f"{(n + 1) % 8}:{i // 2}"
            with lock:
                connections.add(id(cache._conn()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(connections) == 8
    assert len(cache) == 800
    assert all(cache.lookup(request(f"t{n}-{i}")) is not None for n in range(8) for i in range(100))


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path[:0] = [sys.argv[3]]
    from conftest import request, response
    from maru.cache import SQLiteCache

    path, name = sys.argv[1], sys.argv[2]
    other = "b" if name == "a" else "a"
    cache = SQLiteCache(path)
    open(f"{path}.{name}.ready", "w").close()
    while not os.path.exists(f"{path}.go"):  # start together, so the writes interleave
        time.sleep(0.005)
    seen = 0
    for i in range(N):
        cache.update(request(f"{name}-{i}"), response(f"{name}:{i}"))
        hit = cache.lookup(request(f"{other}-{i}"))
        if hit is not None:
            assert hit.message.content == f"{other}:{i}", hit
            seen += 1
    print(seen)
    """
)
N_WRITES = 1000


def test_two_processes_write_and_read_the_same_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    here = os.path.dirname(__file__)
    script = _WRITER.replace("range(N)", f"range({N_WRITES})")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), name, here],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while not all(os.path.exists(f"{path}.{n}.ready") for n in "ab"):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail(
                "a writer failed to start:\n" + "\n".join(p.communicate()[1] for p in procs)
            )
        time.sleep(0.01)
    open(f"{path}.go", "w").close()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert 0 <= int(out) <= N_WRITES
    cache = SQLiteCache(path)
    assert len(cache) == 2 * N_WRITES
    for name in "ab":
        for i in range(N_WRITES):
            assert cache.lookup(request(f"{name}-{i}")).message.content == f"{name}:{i}"


def _forked_writer(cache: SQLiteCache, name: str) -> None:
    for i in range(50):
        cache.update(request(f"{name}-{i}"), response(name))
    assert cache.lookup(request("parent")).message.content == "parent"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads, on Python >= 3.12
def test_a_cache_opened_before_fork_works_in_the_children(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    cache.update(request("parent"), response("parent"))
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_forked_writer, args=(cache, f"child{n}")) for n in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert len(cache) == 151  # the parent's inherited connection still works too
    assert cache.lookup(request("child2-49")).message.content == "child2"


def test_async_twins(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")

    async def main():
        await cache.aupdate(request("q"), response("async"))
        return await cache.alookup(request("q"))

    assert asyncio.run(main()).message.content == "async"


def test_close_affects_only_its_own_instance_and_reopens_on_use(tmp_path):
    one = SQLiteCache(tmp_path / "c.sqlite")
    two = SQLiteCache(tmp_path / "c.sqlite")
    one.update(request("q"), response("kept"))
    one.close()
    assert two.lookup(request("q")).message.content == "kept"  # two's connection still open
    assert one.lookup(request("q")).message.content == "kept"  # one reconnects
