"""What a user reads when the SQL or the database URL is wrong: where, and what to do — one maru
error, never sqlglot's or SQLAlchemy's raw text (issue 15, item 14)."""

from __future__ import annotations

import pytest

from maru.errors import ConfigurationError, SQLExecutionError, UnsafeSQLError
from maru.sql import SQLDatabase, validate_sql


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("SELECT * FROM", "line 1, column 10"),
        ("SELECT a FROM t\nWHERE x = = 1", "line 2, column 11"),
        ("SELECT (a FROM t", "line 1, column 11"),
        ("SELEC a FROM t", "line 1, column 9"),
        ("SELECT a FROM t WHERE", "line 1, column 17"),
    ],
)
def test_a_parse_error_says_where_in_words(sql, where):
    with pytest.raises(UnsafeSQLError) as info:
        validate_sql(sql)
    message = str(info.value)
    assert where in message
    assert "<class" not in message and "<Token" not in message and "sqlglot" not in message
    assert len(message.splitlines()) == 1


def test_a_missing_parenthesis_is_named():
    with pytest.raises(UnsafeSQLError, match=r"\)"):
        validate_sql("SELECT * FROM t WHERE a IN (1, 2")


def test_an_unclosed_quote_is_named():
    with pytest.raises(UnsafeSQLError, match="quote"):
        validate_sql("SELECT 'abc FROM t")


@pytest.mark.parametrize("given", ["chinook.sqlite", "data/chinook.db", "./music.sqlite3"])
def test_a_file_path_instead_of_a_url_suggests_the_url(given):
    with pytest.raises(ConfigurationError, match=f"sqlite:///{given}"):
        SQLDatabase(given)


def test_an_unknown_driver_names_the_fix():
    with pytest.raises(ConfigurationError) as info:
        SQLDatabase("sqlit:///chinook.db")
    assert "sqlit" in str(info.value) and "sqlite:///" in str(info.value)


def test_a_missing_driver_package_names_the_package():
    with pytest.raises(ConfigurationError, match="pip install"):
        _ = SQLDatabase("mysql+mysqldb://u@127.0.0.1/db").engine


def test_garbage_is_not_a_url():
    with pytest.raises(ConfigurationError, match="URL"):
        SQLDatabase("not a url at all")


def test_an_unreachable_server_is_one_line():
    from conftest import free_port

    db = SQLDatabase(f"postgresql+psycopg://reader@127.0.0.1:{free_port()}/shop?connect_timeout=2")
    with pytest.raises(SQLExecutionError) as info:
        db.run("SELECT 1")
    assert len(str(info.value).splitlines()) == 1 and "127.0.0.1" in str(info.value)
