"""SQL attacks through maru's public SQL API: attempts, refused, got through, per family.

    .venv/bin/python bench/attacks_sql.py [--pg URL]

SQLite families run on a small database this script builds in a temporary folder: writes and DDL,
several statements in one, PRAGMA writes, ATTACH / VACUUM INTO, resource bombs (values that grow,
steps that loop, results that fill memory) and deep expressions — through ``SQLDatabase.run`` (both
locks) and again past the validator (``_execute``: the connection alone). PostgreSQL families run
only with ``--pg`` naming a throwaway server (the tests start one): functions with lasting side
effects or leaks, and session leftovers (advisory locks, settings) on pooled connections.

An attempt is *refused* when maru raises its own error (``UnsafeSQLError``, ``SQLExecutionError``)
within the timeout and nothing changed. It *got through* when it ran (a leak is a finding too), left
a trace (the database file changed, a file appeared, a slot, lock, statistics reset or WAL switch),
ran past its timeout by more than a second, or ended in any other exception (a raw ``MemoryError``
or ``RecursionError``). The "outliving the query" families run past the validator on purpose:
there only what is left behind for the next query counts. Each row also gives the slowest
attempt, ``max_s``. Bounded: about 60 attempts, each stopped by a 1 s timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

TIMEOUT_S = 1.0

WRITES = [
    "DELETE FROM Track",
    "UPDATE Artist SET Name = 'x'",
    "INSERT INTO Artist (Name) VALUES ('x')",
    "REPLACE INTO Artist (ArtistId, Name) VALUES (1, 'x')",
    "DROP TABLE Track",
    "CREATE TABLE evil (a int)",
    "CREATE TEMP TABLE evil (a int)",
    "ALTER TABLE Artist ADD COLUMN evil int",
    "CREATE INDEX evil ON Track (Name)",
    "WITH gone AS (DELETE FROM Track RETURNING *) SELECT * FROM gone",
    "SELECT * INTO evil FROM Artist",
    "ANALYZE",
    "REINDEX",
    "VACUUM",
]
MULTI = [
    "SELECT 1; DROP TABLE Track",
    "SELECT 1;; DELETE FROM Track",
    "SELECT 1 /* ; */ ; DELETE FROM Track",
    "SELECT 1 -- comment\n; DELETE FROM Track",
    "SELECT Name FROM Artist WHERE Name = 'x'; UPDATE Artist SET Name = 'y'; --'",
]
PRAGMAS = [
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA user_version = 7",
    "PRAGMA temp_store_directory = '{dir}'",
]
FILES = [
    "ATTACH DATABASE '{dir}/evil.db' AS evil",
    "VACUUM INTO '{dir}/copy.db'",
    "SELECT load_extension('{dir}/evil.so')",
    "SELECT writefile('{dir}/w.txt', 'x')",
    "SELECT readfile('/etc/passwd')",
]
BOMBS = [
    "SELECT hex(zeroblob(100000000)) FROM Artist",
    "SELECT printf('%.*c', 900000000, 'x')",
    "SELECT length(randomblob(500000000))",
    "WITH RECURSIVE c(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM c) SELECT length(s) FROM c",
    "SELECT length(group_concat(a.Name || b.Name)) FROM Track a, Track b",
    "SELECT count(*) FROM Track a, Track b, Track c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "SELECT count(*) FROM Track a, Track b WHERE a.Name || b.Name LIKE '%a%b%c%d%e%f%g%h%i%j%'",
    "WITH RECURSIVE c(s) AS (SELECT 'a' UNION ALL SELECT s || s FROM c WHERE length(s) < 500000) "
    "SELECT instr(s || 'b', substr(s, 1, 250000) || 'b') FROM c",
    "WITH RECURSIVE c(s) AS (SELECT 'a' UNION ALL SELECT s || s FROM c WHERE length(s) < 500000) "
    "SELECT replace(s, substr(s, 1, 250000) || 'b', 'x') FROM c",
    "WITH RECURSIVE c(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM c WHERE length(s) < 500000) "
    "SELECT s, s, s, s FROM c, Track WHERE length(s) > 200000",
]
DEEP = [
    "SELECT " + "(" * 50 + "1" + ")" * 50 + " FROM Artist",
    "SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM Artist",
    "SELECT " + " + ".join(["1"] * 5000) + " FROM Artist",
    "SELECT " + "NOT " * 3000 + "1 FROM Artist",
    "SELECT " + "CASE WHEN 1 THEN " * 300 + "1" + " END" * 300 + " FROM Artist",
    "SELECT * FROM Artist WHERE ArtistId IN (" + "SELECT ArtistId FROM Artist WHERE ArtistId IN (" * 40 + "1" + ")" * 41,
]
PG_FUNCTIONS = [
    "SELECT pg_create_physical_replication_slot('maru_attack_slot')",
    "SELECT * FROM pg_create_logical_replication_slot('maru_attack_slot2', 'test_decoding')",
    "SELECT pg_stat_reset()",
    "SELECT pg_switch_wal()",
    "SELECT pg_logical_emit_message(true, 'maru', 'x')",
    "SELECT pg_advisory_lock(777)",
    "SELECT pg_catalog.pg_advisory_lock(777)",
    "SELECT current_setting('data_directory')",
    "SELECT * FROM pg_ls_waldir()",
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
    "SELECT rolpassword FROM pg_authid",
    "SELECT query FROM pg_stat_activity",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT pg_notify('maru', 'x')",
    "SELECT lo_import('/etc/hostname')",
    "SELECT count(*) FROM attack_items WHERE pg_sleep(5) IS NULL",
    "SELECT lpad('x', 500000000)",
]


def _build_sqlite(folder: Path) -> Path:
    """A small music database (1,000 artists, 3,000 tracks): big enough for cross-join bombs."""
    path = folder / "music.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name TEXT)")
        con.execute("CREATE TABLE Track (TrackId INTEGER PRIMARY KEY, Name TEXT, ArtistId INTEGER REFERENCES Artist(ArtistId))")
        con.executemany("INSERT INTO Artist VALUES (?, ?)", [(i, f"artist {i}") for i in range(1, 1001)])
        con.executemany("INSERT INTO Track VALUES (?, ?, ?)", [(i, f"track {i}", i % 1000 + 1) for i in range(1, 3001)])
    return path


def _state(folder: Path) -> tuple[str, ...]:
    """Every file in the folder with its content hash: any write or new file changes it."""
    return tuple(f"{p.name}:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(folder.iterdir()) if p.is_file())


def _attempt(call: Callable[[], Any], snapshot: Callable[[], object], *, may_run: bool) -> tuple[bool, float]:
    """(got through?, seconds) for one attack. ``snapshot`` is what it must not change (files and
    their hashes; slots, locks, statistics, WAL position; a session setting). An attack must be
    refused with a maru error, unless ``may_run`` (it is run past the validator on purpose, and
    only what it leaves behind counts)."""
    from maru.errors import SQLExecutionError, UnsafeSQLError

    before = snapshot()
    start = time.perf_counter()
    try:
        call()
        refused = may_run
    except (UnsafeSQLError, SQLExecutionError):
        refused = True
    except Exception:  # a raw error (MemoryError, RecursionError …) is a finding  # noqa: BLE001
        refused = False
    elapsed = time.perf_counter() - start
    return not refused or elapsed > TIMEOUT_S + 1 or snapshot() != before, elapsed


def _family(
    name: str, attacks: Iterable[str], run_one: Callable[[str], Any], snapshot: Callable[[], object], *, may_run: bool = False
) -> dict[str, Any]:
    row: dict[str, Any] = {"family": name, "attempts": 0, "refused": 0, "got_through": 0, "max_s": 0.0}
    for sql in attacks:
        got_through, elapsed = _attempt(partial(run_one, sql), snapshot, may_run=may_run)
        row["attempts"] += 1
        row["got_through" if got_through else "refused"] += 1
        row["max_s"] = round(max(row["max_s"], elapsed), 2)
    return row


def sqlite_families() -> list[dict[str, Any]]:
    from maru.sql import SQLDatabase

    rows = []
    with tempfile.TemporaryDirectory(prefix="maru-attacks-sql-") as tmp:
        folder = Path(tmp)
        db = SQLDatabase(f"sqlite:///{_build_sqlite(folder)}", timeout_s=TIMEOUT_S)
        files = lambda attacks: [a.format(dir=folder) for a in attacks]  # noqa: E731
        families = [
            ("writes and DDL", WRITES),
            ("several statements in one", MULTI),
            ("PRAGMA writes", files(PRAGMAS)),
            ("ATTACH, VACUUM INTO, files, extensions", files(FILES)),
            ("resource bombs", BOMBS),
            ("deep expressions", DEEP),
        ]
        try:
            for name, attacks in families:
                rows.append(_family(f"sqlite: {name}", attacks, db.run, lambda: _state(folder)))
            for name, attacks in families:
                if name != "deep expressions":  # the validator's own job: the parse is the attack
                    rows.append(_family(f"sqlite: {name} (validator bypassed)", attacks, db._execute, lambda: _state(folder)))
        finally:
            db.close()
    return rows


def postgres_families(pg_url: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    from maru.sql import SQLDatabase

    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS attack_items (id integer PRIMARY KEY)"))

    def leftovers() -> object:
        with admin.connect() as conn:
            slots = conn.execute(text("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'maru_attack%'")).scalar()
            locks = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
            stats = conn.execute(text("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")).scalar()
            wal = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar()
        return slots, locks, stats, wal

    db = SQLDatabase(pg_url, timeout_s=TIMEOUT_S)
    try:
        rows = [_family("postgres: side-effect and leaking functions, catalogs", PG_FUNCTIONS, db.run, leftovers)]
        rows.append(
            _family(
                "postgres: advisory locks outliving the query (validator bypassed)",
                [f"SELECT pg_advisory_lock({n})" for n in range(900, 905)] + ["SELECT pg_try_advisory_lock(905)"],
                db._execute,
                leftovers,
                may_run=True,
            )
        )
        setting = lambda: db._execute("SELECT current_setting('application_name')").rows[0][0]  # noqa: E731
        rows.append(
            _family(
                "postgres: session settings outliving the query (validator bypassed)",
                ["SELECT set_config('application_name', 'maru-leak', false)"] * 3,
                db._execute,
                setting,
                may_run=True,
            )
        )
    finally:
        db.close()
        with admin.begin() as conn:  # a slot that got through must not fill the server's disk
            conn.execute(text("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'maru_attack%'"))
            conn.execute(text("DROP TABLE IF EXISTS attack_items"))
        admin.dispose()
    return rows


def run(pg_url: str | None = None) -> list[dict[str, Any]]:
    """One row per family: ``family``, ``attempts``, ``refused``, ``got_through``, ``max_s``.
    The PostgreSQL families need ``pg_url`` (a throwaway server; a privileged role shows the most)."""
    rows = sqlite_families()
    if pg_url:
        rows += postgres_families(pg_url)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="a throwaway PostgreSQL URL for the PostgreSQL families")
    args = parser.parse_args()
    rows = run(args.pg)
    for row in rows:
        print(f"{row['family']:<70} attempts {row['attempts']:>3}  refused {row['refused']:>3}  "
              f"got through {row['got_through']:>2}  slowest {row['max_s']:.2f} s")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
