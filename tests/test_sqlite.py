"""``maru._sqlite.error_for``: the one wording of SQLite errors for the cache, the stores and traces."""

from __future__ import annotations

import sqlite3

import pytest

from maru import _sqlite
from maru.errors import CacheError, MaruError, TraceStoreError


def _error(exc: sqlite3.Error, **options: str) -> MaruError:
    return _sqlite.error_for(
        exc, TraceStoreError, what="the trace store /tmp/t.sqlite", timeout=2.5,
        if_corrupt="move it away", if_other="check the path", **options,
    )


@pytest.mark.parametrize(
    "exc",
    [sqlite3.DatabaseError("file is not a database"), sqlite3.OperationalError("database disk image is malformed")],
)
def test_a_corrupt_file_names_the_file_and_the_remedy(exc: sqlite3.Error) -> None:
    error = _error(exc)
    assert isinstance(error, TraceStoreError)
    assert str(error) == (
        f"the trace store /tmp/t.sqlite is corrupt or not a SQLite database ({exc}); move it away"
    )


@pytest.mark.parametrize("text", ["database is locked", "database table is busy"])
def test_a_locked_file_names_the_wait_and_the_timeout_option(text: str) -> None:
    error = _error(sqlite3.OperationalError(text), timeout_option="RunStore(timeout=...)")
    assert str(error) == (
        f"the trace store /tmp/t.sqlite stayed locked by another writer for more than 2.5 s ({text}); "
        "raise RunStore(timeout=...) or find the process holding it"
    )


def test_a_locked_file_without_a_timeout_option_only_says_to_find_the_holder() -> None:
    error = _error(sqlite3.OperationalError("database is locked"))
    assert str(error).endswith("(database is locked); find the process holding it")


def test_anything_else_says_the_file_cannot_be_used() -> None:
    error = _error(sqlite3.OperationalError("unable to open database file"))
    assert str(error) == "cannot use the trace store /tmp/t.sqlite (unable to open database file); check the path"


def test_the_caller_chooses_the_error_type() -> None:
    error = _sqlite.error_for(
        sqlite3.OperationalError("disk I/O error"), CacheError, what="the cache", timeout=1,
        if_corrupt="-", if_other="-",
    )
    assert type(error) is CacheError
