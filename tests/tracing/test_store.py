"""RunStore: round trips, every query and filter, several writer processes, forks, damaged files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maru.errors import TraceStoreError
from maru.tracing.run import Run
from maru.tracing.sinks import RunSink
from maru.tracing.store import SCHEMA_VERSION, RunStore, TraceStats, parse_time

from .traces import make_trace

T0 = 1_764_000_000.0
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "traces.sqlite")
    s.write(make_trace("t-old", "qa-chain", start=T0, tags=("prod",)))
    s.write(make_trace("t-mid", "summarise", start=T0 + 100, child_error="ValueError: bad json"))
    s.write(make_trace("t-new", "QA-chain v2", start=T0 + 200, error="TimeoutError: model took too long"))
    s.write(make_trace("t-tag", "translate", start=T0 + 300, child_tags=("ko",)))
    return s


# ----------------------------------------------------------------------------- round trip
def test_a_trace_round_trips_with_every_field(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    runs = make_trace("abc", start=T0, tags=("prod", "v1"), metadata={"user": "u1", "n": 3})
    s.write(runs)
    got = s.get_trace("abc")
    # By start time, so the root comes first and every parent before its children.
    assert [r.name for r in got] == ["qa-chain", "ChatPromptTemplate", "OpenAIChat", "format", "parse"]
    assert sorted(got, key=lambda r: r.id) == sorted(runs, key=lambda r: r.id)
    llm = s.get_run("abc-3")
    assert llm is not None
    assert llm.inputs == [{"type": "human", "content": "서울 날씨는?"}]
    assert (llm.model, llm.input_tokens, llm.output_tokens, llm.cached_tokens) == ("gpt-4o-mini", 120, 30, 20)
    assert llm.provider == "openai"
    assert llm.cost == pytest.approx(0.000036)
    assert s.get_run("abc-1").tags == ["prod", "v1"]
    assert s.get_run("abc-1").metadata == {"user": "u1", "n": 3}
    assert s.get_run("nope") is None
    assert s.get_trace("nope") == []


def test_none_inputs_and_empty_tags_round_trip(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    run = Run(id="r", trace_id="r", parent_id=None, name="n", kind="chain", start_time=T0, end_time=T0 + 1)
    s.write([run])
    assert s.get_run("r") == run


def test_writing_a_trace_again_replaces_it(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    s.write(make_trace("x", start=T0))
    s.write(make_trace("x", start=T0, error="RuntimeError: second"))
    assert s.count_traces() == 1
    assert s.get_run("x-1").error == "RuntimeError: second"


def test_a_store_is_a_sink(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    assert isinstance(s, RunSink)
    s.write([])
    s.flush()
    s.close()
    s.write(make_trace("after-close", start=T0))  # close() only drops connections
    assert s.count_traces() == 1


def test_the_file_is_in_wal_mode_with_indexes(store: RunStore) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE parent_id IS NULL ORDER BY start_time DESC"
            )
        )
    assert {"runs_trace", "runs_roots", "runs_name"} <= indexes
    assert "runs_roots" in plan


# ----------------------------------------------------------------------------- queries
def test_list_traces_gives_root_runs_newest_first(store: RunStore) -> None:
    roots = store.list_traces()
    assert [r.trace_id for r in roots] == ["t-tag", "t-new", "t-mid", "t-old"]
    assert all(r.parent_id is None for r in roots)
    assert store.count_traces() == 4


def test_limit_and_offset_page_through(store: RunStore) -> None:
    assert [r.trace_id for r in store.list_traces(limit=2)] == ["t-tag", "t-new"]
    assert [r.trace_id for r in store.list_traces(limit=2, offset=2)] == ["t-mid", "t-old"]
    assert store.list_traces(limit=2, offset=4) == []


def test_name_is_a_case_insensitive_substring(store: RunStore) -> None:
    assert [r.trace_id for r in store.list_traces(name="qa-chain")] == ["t-new", "t-old"]
    assert [r.trace_id for r in store.list_traces(name="SUMM")] == ["t-mid"]
    assert store.count_traces(name="qa") == 2
    # Only root names count: "OpenAIChat" is a child in every trace.
    assert store.list_traces(name="OpenAIChat") == []


def test_like_wildcards_in_a_name_are_literal(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    s.write(make_trace("a", "100% done", start=T0))
    s.write(make_trace("b", "100 done", start=T0 + 1))
    s.write(make_trace("c", "snake_case", start=T0 + 2))
    s.write(make_trace("d", "snakeXcase", start=T0 + 3))
    assert [r.trace_id for r in s.list_traces(name="0%")] == ["a"]
    assert [r.trace_id for r in s.list_traces(name="e_c")] == ["c"]


def test_tag_matches_any_run_of_the_trace(store: RunStore) -> None:
    assert [r.trace_id for r in store.list_traces(tag="prod")] == ["t-old"]  # on the root
    assert [r.trace_id for r in store.list_traces(tag="ko")] == ["t-tag"]  # on a child only
    assert store.list_traces(tag="pro") == []  # tags match exactly
    assert store.count_traces(tag="ko") == 1


def test_since_and_until_bound_the_root_start(store: RunStore) -> None:
    assert [r.trace_id for r in store.list_traces(since=T0 + 100)] == ["t-tag", "t-new", "t-mid"]
    assert [r.trace_id for r in store.list_traces(until=T0 + 100)] == ["t-old"]
    assert [r.trace_id for r in store.list_traces(since=T0 + 50, until=T0 + 250)] == ["t-new", "t-mid"]
    assert store.count_traces(since=T0 + 50, until=T0 + 250) == 2


def test_errors_only_finds_traces_where_any_run_failed(store: RunStore) -> None:
    # t-new failed at the root; t-mid recovered from a failed parser.
    assert [r.trace_id for r in store.list_traces(errors_only=True)] == ["t-new", "t-mid"]
    assert store.count_traces(errors_only=True) == 2


def test_filters_combine(store: RunStore) -> None:
    assert [r.trace_id for r in store.list_traces(name="qa", errors_only=True)] == ["t-new"]
    assert store.list_traces(name="qa", tag="ko") == []
    assert store.count_traces(name="chain", since=T0 + 1, errors_only=True) == 1


def test_trace_stats_count_runs_and_errors(store: RunStore) -> None:
    stats = store.trace_stats(["t-old", "t-mid", "t-new", "missing"])
    assert stats == {"t-old": TraceStats(5, 0), "t-mid": TraceStats(5, 1), "t-new": TraceStats(3, 2)}
    many = store.trace_stats([f"x{i}" for i in range(1200)] + ["t-old"])  # chunked IN lists
    assert many == {"t-old": TraceStats(5, 0)}


def test_match_trace_ids_by_prefix(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    for trace_id in ("abc", "abcd", "abx", "zzz"):
        s.write(make_trace(trace_id, start=T0))
    assert s.match_trace_ids("zz") == ["zzz"]
    assert s.match_trace_ids("ab") == ["abc", "abcd", "abx"]
    assert s.match_trace_ids("ab", limit=2) == ["abc", "abcd"]
    assert s.match_trace_ids("abc") == ["abc"]  # an exact id wins over longer ones it starts
    assert s.match_trace_ids("abcd") == ["abcd"]
    assert s.match_trace_ids("q") == []
    assert s.match_trace_ids("") == []


def test_delete_before_removes_whole_traces(store: RunStore) -> None:
    assert store.delete_before(T0 + 150) == 2
    assert [r.trace_id for r in store.list_traces()] == ["t-tag", "t-new"]
    assert store.get_trace("t-old") == [] and store.get_trace("t-mid") == []
    assert store.get_run("t-mid-5") is None  # grandchildren too
    assert store.delete_before(T0) == 0


# ----------------------------------------------------------------------------- concurrency
def test_threads_write_and_read_at_once(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "t.sqlite")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(30):
                s.write(make_trace(f"th{n}-{i}", start=T0 + i))
                s.list_traces(limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.count_traces() == 180


WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from maru.tracing.store import RunStore
    from tracing.traces import make_trace

    store = RunStore(sys.argv[3])
    worker = sys.argv[4]
    while time.time() < float(sys.argv[5]):  # start together, so the writes really overlap
        time.sleep(0.001)
    for i in range(50):
        store.write(make_trace(f"p{worker}-{i}", start=1764000000.0 + i, tags=(f"w{worker}",)))
    print("ok")
    """
)


def test_three_processes_write_150_traces_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"  # nobody creates it first: the writers race to
    tests_dir = str(Path(__file__).resolve().parents[1])
    start_at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, SRC, tests_dir, str(path), str(n), start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    store = RunStore(path)
    assert store.count_traces() == 150
    for n in range(3):
        assert store.count_traces(tag=f"w{n}") == 50
    stats = store.trace_stats(r.trace_id for r in store.list_traces(limit=200))
    assert len(stats) == 150 and all(s == TraceStats(5, 0) for s in stats.values())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _forked_writer(store: RunStore, name: str) -> None:
    store.write(make_trace(name, start=T0))
    store.list_traces()


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_store_opened_before_fork_works_in_the_children(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "t.sqlite")
    store.write(make_trace("parent", start=T0))
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_forked_writer, args=(store, f"child{n}")) for n in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    store.write(make_trace("parent-again", start=T0))
    assert store.count_traces() == 5


# ----------------------------------------------------------------------------- bad files
def test_a_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(TraceStoreError) as info:
        RunStore(path)
    assert str(path) in str(info.value)
    assert "corrupt or not a SQLite database" in str(info.value)
    with pytest.raises(TraceStoreError, match="corrupt"):
        RunStore(path, create=False)


def test_a_file_damaged_while_open_fails_on_the_next_query(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    store = RunStore(path)
    store.write(make_trace("a", start=T0))
    store.close()
    path.write_bytes(b"not a database at all" * 500)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(TraceStoreError, match=str(path)):
        store.list_traces()


def test_a_foreign_database_or_another_schema_version_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(TraceStoreError, match="something else"):
        RunStore(foreign)
    path = tmp_path / "t.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE maru_trace_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(TraceStoreError, match="schema version 99"):
        RunStore(path)


def test_reading_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "none" / "traces.sqlite"
    with pytest.raises(TraceStoreError, match="no trace store at"):
        RunStore(path, create=False)
    assert not path.exists() and not path.parent.exists()
    with pytest.raises(TraceStoreError, match="is a folder"):
        RunStore(tmp_path, create=False)


def test_create_false_opens_an_existing_store(store: RunStore) -> None:
    reader = RunStore(store.path, create=False)
    assert reader.count_traces() == 4


def test_memory_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        RunStore(":memory:")


# ----------------------------------------------------------------------------- parse_time
def test_parse_time_reads_durations_dates_and_epochs() -> None:
    now = 1_000_000.0
    assert parse_time("30s", now=now) == now - 30
    assert parse_time("15m", now=now) == now - 900
    assert parse_time("1h", now=now) == now - 3600
    assert parse_time("2 days", now=now) == now - 2 * 86400
    assert parse_time("1w", now=now) == now - 604800
    assert parse_time("1764000000") == 1764000000.0
    assert parse_time(12.5) == 12.5
    assert parse_time("2025-11-25T00:00:00Z") == datetime(2025, 11, 25, tzinfo=UTC).timestamp()
    assert parse_time("2025-11-25T09:00:00+09:00") == datetime(2025, 11, 25, tzinfo=UTC).timestamp()
    assert parse_time("2025-11-25") == datetime(2025, 11, 25).timestamp()  # local midnight
    assert parse_time("") is None and parse_time(None) is None
    with pytest.raises(ValueError, match="duration back from now"):
        parse_time("yesterday-ish")


def test_a_store_from_the_first_schema_is_upgraded_in_place_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE maru_trace_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO maru_trace_meta VALUES ('schema_version', '1');
        CREATE TABLE runs (id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
          kind TEXT NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL, inputs TEXT, outputs TEXT,
          error TEXT, tags TEXT NOT NULL DEFAULT '[]', metadata TEXT NOT NULL DEFAULT '{}', model TEXT,
          input_tokens INTEGER, output_tokens INTEGER, cached_tokens INTEGER, cost REAL);
        CREATE INDEX runs_trace ON runs (trace_id);
        CREATE INDEX runs_roots ON runs (start_time) WHERE parent_id IS NULL;
        CREATE INDEX runs_name ON runs (name);
        INSERT INTO runs (id, trace_id, name, kind, start_time, end_time, inputs, outputs, model)
          VALUES ('old-1', 'old-1', 'chat', 'llm', 1.0, 2.0, '"hi"', '"hello"', 'gpt-4o-mini');
        """
    )
    conn.commit()
    conn.close()
    s = RunStore(path)
    old = s.get_run("old-1")
    assert old is not None and (old.model, old.provider, old.outputs) == ("gpt-4o-mini", None, "hello")
    s.write(make_trace("new", start=T0))
    assert s.get_run("new-3").provider == "openai"
    s.close()
    version = sqlite3.connect(path).execute("SELECT value FROM maru_trace_meta").fetchone()[0]
    assert version == str(SCHEMA_VERSION)
    assert RunStore(path, create=False).get_run("old-1") is not None  # opens again, no second upgrade


def test_a_store_from_a_newer_maru_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE maru_trace_meta SET value = '99'")
    conn.commit()
    conn.close()
    with pytest.raises(TraceStoreError, match=f"schema version 99, this maru uses {SCHEMA_VERSION}"):
        RunStore(path)
