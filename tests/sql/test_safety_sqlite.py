"""SQLite cannot be made to write, read other files or exhaust the machine, even by SQL that
reaches the connection without the validator: limits, an authorizer and a deadline that fires
inside long steps (issue 16, item 4)."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from conftest import SHARED_DATA
from maru.errors import SQLExecutionError, UnsafeSQLError
from maru.sql import SQLDatabase, validate_sql

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"

pytestmark = pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")

TIMEOUT_S = 1.0


@pytest.fixture
def chinook(tmp_path):
    """A private copy, so a write that got through would show and harm nothing."""
    path = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, path)
    db = SQLDatabase(f"sqlite:///{path}", timeout_s=TIMEOUT_S)
    yield db
    db.close()


def _timed(call):
    start = time.perf_counter()
    with pytest.raises((SQLExecutionError, UnsafeSQLError)) as info:
        call()
    return time.perf_counter() - start, str(info.value)


BOMBS = [
    # one SQLite step that allocates or loops for a long time: the progress handler never fired
    "SELECT hex(zeroblob(100000000)) FROM Artist",
    "SELECT printf('%.*c', 900000000, 'x')",
    "SELECT length(randomblob(500000000))",
]


@pytest.mark.parametrize("sql", BOMBS)
def test_resource_bombs_are_refused_by_the_validator(sql):
    with pytest.raises(UnsafeSQLError, match="not on the allow-list"):
        validate_sql(sql)


@pytest.mark.parametrize("sql", BOMBS)
def test_resource_bombs_past_the_validator_end_quickly_with_a_maru_error(chinook, sql):
    elapsed, message = _timed(lambda: chinook._execute(sql))
    assert elapsed < TIMEOUT_S + 1, f"{sql} ran {elapsed:.1f} s"
    assert "not allowed" in message or "limit" in message


@pytest.mark.parametrize(
    "sql",
    [
        # values that grow past the length limit with allowed functions and operators
        "WITH RECURSIVE c(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM c) SELECT length(s) FROM c",
        "SELECT length(group_concat(a.Name || b.Name)) FROM Track a, Track b",
    ],
)
def test_growing_values_stop_at_the_length_limit(chinook, sql):
    elapsed, message = _timed(lambda: chinook.run(sql))
    assert elapsed < TIMEOUT_S + 1
    assert "limit" in message or "longer than" in message  # group_concat reports its overflow at the end


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM Track a, Track b, Track c",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        "SELECT count(*) FROM Track a, Track b WHERE a.Name || b.Name LIKE '%a%b%c%d%e%f%g%h%i%j%'",
    ],
)
def test_long_queries_end_by_their_timeout(chinook, sql):
    elapsed, message = _timed(lambda: chinook.run(sql))
    assert TIMEOUT_S - 0.1 < elapsed < TIMEOUT_S + 1, f"{elapsed:.2f} s"
    assert f"longer than {TIMEOUT_S:g} s" in message


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode = DELETE",
        "ATTACH DATABASE '{dir}/evil.db' AS evil",
        "VACUUM INTO '{dir}/copy.db'",
        "SELECT load_extension('{dir}/evil.so')",
    ],
)
def test_the_connection_refuses_pragma_writes_attach_and_files(chinook, tmp_path, sql):
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SQLExecutionError):
        chinook._execute(sql.format(dir=tmp_path))
    # query_only is still on, so nothing after it can write either
    with pytest.raises(SQLExecutionError):
        chinook._execute(f"VACUUM INTO '{tmp_path}/after.db'")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_query_only_cannot_be_turned_off_then_used(chinook, tmp_path):
    for sql in ("PRAGMA query_only = OFF", f"ATTACH DATABASE '{tmp_path}/x.db' AS x", "DELETE FROM Genre"):
        with pytest.raises(SQLExecutionError):
            chinook._execute(sql)
    with sqlite3.connect(chinook.url.removeprefix("sqlite:///")) as raw:
        assert raw.execute("SELECT count(*) FROM Genre").fetchone()[0] == 25
    assert not (tmp_path / "x.db").exists()


def test_schema_reading_and_ordinary_functions_still_work(chinook):
    assert "CREATE TABLE Album (" in chinook.describe(["Album"])
    rows = chinook.run(
        "SELECT upper(substr(Name, 1, 3)), length(Name), coalesce(Composer, '-'), round(avg(Milliseconds) / 1000.0, 1), "
        "strftime('%Y', '2020-05-01'), count(DISTINCT GenreId) FROM Track WHERE Name LIKE 'A%' "
        "GROUP BY 1, 2, 3 ORDER BY 2 DESC LIMIT 3"
    ).rows
    assert len(rows) == 3


@pytest.mark.parametrize("depth", [50, 200, 5000])
def test_deeply_nested_expressions_are_a_clean_refusal(depth):
    with pytest.raises(UnsafeSQLError, match="nest"):
        validate_sql("SELECT " + "(" * depth + "1" + ")" * depth + " FROM t")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + " + ".join(["1"] * 5000) + " FROM Genre",
        "SELECT " + "NOT " * 3000 + "1 FROM Genre",
        "SELECT " + "CASE WHEN 1 THEN " * 200 + "1" + " END" * 200 + " FROM Genre",
    ],
)
def test_long_operator_chains_are_a_clean_refusal(chinook, sql):
    _, message = _timed(lambda: chinook.run(sql))
    assert "deep" in message or "depth" in message


def test_the_result_size_is_bounded(tmp_path):
    path = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, path)
    db = SQLDatabase(f"sqlite:///{path}", timeout_s=5, max_result_bytes=1_000_000)
    with pytest.raises(SQLExecutionError, match="larger than"):
        db.run(
            "WITH RECURSIVE c(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM c WHERE length(s) < 200000) "
            "SELECT s FROM c, Track WHERE length(s) > 100000"
        )
    db.close()
