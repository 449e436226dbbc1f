"""PostgreSQL with a privileged role: a READ ONLY transaction does not stop replication slots,
statistics resets, WAL switches, advisory locks or settings leaks, so only allow-listed functions
run, every pooled session is reset on return, and `maru sql` warns about a superuser (issue 16,
item 3). Runs on the private cluster the tests start; its role is a superuser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maru.errors import SQLExecutionError, UnsafeSQLError
from maru.sql import SQLDatabase
from test_cli import invoke

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"

SIDE_EFFECTS = [
    "SELECT pg_create_physical_replication_slot('maru_slot')",
    "SELECT * FROM pg_create_physical_replication_slot('maru_slot')",
    "SELECT pg_stat_reset()",
    "SELECT pg_switch_wal()",
    "SELECT pg_logical_emit_message(true, 'maru', 'hello')",
    "SELECT pg_advisory_lock(4242)",
    "SELECT pg_try_advisory_lock(4242)",
    "SELECT pg_catalog.pg_advisory_lock(4242)",
    "SELECT current_setting('data_directory')",
    "SELECT * FROM pg_ls_waldir()",
    "SELECT name FROM t, LATERAL pg_ls_dir('.') AS name",
    "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
    "SELECT setting FROM pg_catalog.pg_settings",
    "SELECT rolpassword FROM pg_authid",
    "SELECT query FROM pg_stat_activity",
    "SELECT pg_notify('ch', 'x')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT txid_current()",
    "SELECT version()",
    "SELECT lo_import('/etc/passwd')",
    "SELECT query_to_xml('DELETE FROM t', true, true, '')",
    "SELECT count(*) FROM t WHERE pg_sleep(10) IS NULL",
    "SELECT lpad('x', 500000000)",  # a 500 MB value built in half a second, shipped to the client
    "SELECT repeat('x', 500000000)",
]


@pytest.fixture(scope="module")
def admin(postgres_url):
    from sqlalchemy import create_engine

    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def db(postgres_url, admin):
    from sqlalchemy import text

    with admin.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS safety_items"))
        conn.execute(text("CREATE TABLE safety_items (id integer PRIMARY KEY, name text)"))
        conn.execute(text("INSERT INTO safety_items VALUES (1, 'a'), (2, 'b')"))
    database = SQLDatabase(postgres_url, timeout_s=1)
    yield database
    database.close()


@pytest.mark.parametrize("sql", SIDE_EFFECTS)
def test_functions_off_the_allow_list_and_system_catalogs_are_refused(db, admin, sql):
    from sqlalchemy import text

    with pytest.raises(UnsafeSQLError, match="allow-list|system catalog"):
        db.run(sql)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_replication_slots")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0


def test_ordinary_functions_still_run(db):
    result = db.run(
        "SELECT upper(name), length(name), coalesce(name, '-'), round(avg(id), 1), count(*), "
        "string_agg(name, ',') OVER (), date_trunc('day', now()) IS NOT NULL, extract(year FROM now()) > 2000 "
        "FROM safety_items GROUP BY name ORDER BY name"
    )
    assert [r[0] for r in result.rows] == ["A", "B"]


def test_an_advisory_lock_taken_past_the_validator_does_not_outlive_the_query(db, admin):
    from sqlalchemy import text

    db._execute("SELECT pg_advisory_lock(4242)")  # the validator would refuse this; the pool resets
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0
        assert conn.execute(text("SELECT pg_try_advisory_lock(4242)")).scalar() is True
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
    # the pooled session is still read-only after the reset
    with pytest.raises(SQLExecutionError, match="read-only transaction"):
        db._execute("DELETE FROM safety_items")
    assert db.run("SELECT count(*) FROM safety_items").rows == [(2,)]


def test_session_settings_do_not_outlive_the_query(db):
    db._execute("SELECT set_config('application_name', 'leaked', false)")  # past the validator
    assert db._execute("SELECT current_setting('application_name')").rows[0][0] != "leaked"


def _readme_role_sql() -> list[str]:
    """The README's SELECT-only role, as written (the password dropped: the test cluster trusts)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"A SELECT-only role:\s*```sql\n(.*?)```", text, re.S)
    assert block, "the README's SQL section shows a SELECT-only role"
    sql = block.group(1).replace(" PASSWORD '…'", "").replace("DATABASE shop", "DATABASE maru")
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def test_a_superuser_role_is_named_and_the_readme_role_is_not(db, admin, postgres_url):
    from sqlalchemy import text

    assert "superuser" in (db.privilege_warning() or "")
    with admin.begin() as conn:
        conn.execute(text("DROP OWNED BY maru_reader CASCADE") if _role_exists(conn) else text("SELECT 1"))
        conn.execute(text("DROP ROLE IF EXISTS maru_reader"))
        for statement in _readme_role_sql():
            conn.execute(text(statement))
    reader = SQLDatabase(postgres_url.replace("postgres@", "maru_reader@"))
    try:
        assert reader.privilege_warning() is None
        assert reader.run("SELECT count(*) FROM safety_items").rows == [(2,)]
        with pytest.raises(SQLExecutionError, match="read-only|permission denied"):
            reader._execute("DELETE FROM safety_items")
    finally:
        reader.close()


def _role_exists(conn) -> bool:
    from sqlalchemy import text

    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'maru_reader'")).scalar())


def test_maru_sql_warns_about_a_superuser(db, postgres_url):
    result = invoke("sql", "--db", postgres_url, "--query", "SELECT count(*) FROM safety_items")
    assert result.exit_code == 0, result.output
    assert "superuser" in result.stderr and "SELECT-only" in result.stderr
