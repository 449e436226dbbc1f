"""The validator and the read-only connection: Spider gold queries run, mutations never do."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter

import pytest

from conftest import SHARED_DATA
from maru.errors import ConfigurationError, SQLExecutionError, UnsafeSQLError
from maru.sql import SQLDatabase, validate_sql

DATA = SHARED_DATA
SPIDER = DATA / "spider_dev_partial"
CHINOOK = DATA / "chinook" / "Chinook_Sqlite.sqlite"
RUNNABLE = ("flight_2", "singer")

pytestmark = pytest.mark.skipif(not SPIDER.is_dir(), reason="shared data not present")


def _gold() -> list[tuple[str, str]]:
    rows = []
    for line in (SPIDER / "dev_gold.sql").read_text().splitlines():
        sql, _, db = line.rpartition("\t")
        if db in RUNNABLE:
            rows.append((db, sql))
    return rows


GOLD = _gold() if SPIDER.is_dir() else []


@pytest.fixture(scope="module")
def dbs():
    opened = {name: SQLDatabase(f"sqlite:///{SPIDER / 'database' / name / (name + '.sqlite')}") for name in RUNNABLE}
    yield opened
    for db in opened.values():
        db.close()


def test_all_runnable_gold_queries_are_present():
    assert len(GOLD) == 110


@pytest.mark.parametrize(("db_name", "sql"), GOLD, ids=[f"{d}-{i}" for i, (d, _) in enumerate(GOLD)])
def test_gold_query_passes_and_returns_the_gold_result(dbs, db_name, sql):
    path = SPIDER / "database" / db_name / f"{db_name}.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as raw:
        expected = raw.execute(sql).fetchall()
    result = dbs[db_name].run(sql)
    assert len(expected) <= 1000, "gold results fit under the row limit"
    if "order by" in sql.lower():
        assert result.rows == expected
    else:
        assert Counter(result.rows) == Counter(expected)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM singer",
        "UPDATE singer SET age = 1",
        "INSERT INTO singer (name) VALUES ('x')",
        "DROP TABLE singer",
        "CREATE TABLE x (a int)",
        "ALTER TABLE singer ADD COLUMN x int",
        "PRAGMA writable_schema = 1",
        "ATTACH DATABASE '/tmp/evil.db' AS evil",
        "SELECT load_extension('/tmp/evil.so')",
        "SELECT writefile('/tmp/x', 'data')",
        "SELECT * FROM singer; DROP TABLE singer",
        "SELECT 1; SELECT 2",
        "WITH gone AS (DELETE FROM singer RETURNING *) SELECT * FROM gone",
        "SELECT * INTO copy_of_singer FROM singer",
        "VACUUM INTO '/tmp/copy.db'",
        "REPLACE INTO singer (singer_id) VALUES (1)",
        "",
        "this is not sql at all (",
    ],
)
def test_mutations_multi_statements_and_side_effects_are_refused(sql):
    with pytest.raises(UnsafeSQLError):
        validate_sql(sql, dialect="sqlite")


def test_injection_through_a_value_stays_a_value(dbs):
    # A classic payload inside a string literal is data, and the statement count stays one.
    result = dbs["singer"].run("SELECT name FROM singer WHERE name = 'x''; DROP TABLE singer; --'")
    assert result.rows == []
    assert dbs["singer"].run("SELECT count(*) FROM singer").rows[0][0] > 0


def test_row_limit_is_enforced():
    assert validate_sql("SELECT * FROM t", max_rows=10).sql.endswith("LIMIT 10")
    assert validate_sql("SELECT * FROM t LIMIT 5", max_rows=10).sql.endswith("LIMIT 5")
    assert validate_sql("SELECT * FROM t LIMIT 500", max_rows=10).sql.endswith("LIMIT 10")
    assert "LIMIT 10" in validate_sql("SELECT a FROM t UNION SELECT b FROM u", max_rows=10).sql


def test_connection_is_read_only_even_without_the_validator(tmp_path):
    path = tmp_path / "copy.sqlite"
    shutil.copy(SPIDER / "database" / "singer" / "singer.sqlite", path)
    db = SQLDatabase(f"sqlite:///{path}")
    with pytest.raises(SQLExecutionError, match="read-only|readonly"):
        db._execute("DELETE FROM singer")
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM singer").fetchone()[0] > 0


def test_long_query_is_stopped_by_the_timeout(dbs):
    slow = SQLDatabase(dbs["singer"].url, timeout_s=0.2)
    with pytest.raises(SQLExecutionError, match="longer than 0.2 s"):
        slow.run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")


def test_database_errors_are_reported_with_the_sql(dbs):
    with pytest.raises(SQLExecutionError, match="no such column") as info:
        dbs["singer"].run("SELECT nope FROM singer")
    assert "nope" in info.value.sql


def test_missing_database_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        _ = SQLDatabase(f"sqlite:///{tmp_path / 'missing.db'}").engine


@pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")
def test_chinook_schema_is_described_correctly():
    db = SQLDatabase(f"sqlite:///{CHINOOK}", sample_rows=2)
    assert db.table_names() == [
        "Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine",
        "MediaType", "Playlist", "PlaylistTrack", "Track",
    ]
    album = db.describe(["Album"])
    assert "CREATE TABLE Album (" in album
    assert "AlbumId INTEGER PRIMARY KEY" in album
    assert "FOREIGN KEY (ArtistId) REFERENCES Artist(ArtistId)" in album
    assert "For Those About To Rock We Salute You" in album  # a sample row
    playlist_track = db.describe(["PlaylistTrack"])
    assert "PRIMARY KEY (PlaylistId, TrackId)" in playlist_track
    relevant = db.relevant_tables("Which artist released the most albums?", k=2)
    assert relevant[:2] == ["Album", "Artist"]
    assert "Invoice" not in relevant
