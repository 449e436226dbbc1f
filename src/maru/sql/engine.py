"""The read-only SQLAlchemy engine behind :class:`~maru.sql.SQLDatabase`, and the URL checks
that turn a wrong ``--db`` into one message naming the fix.

SQLite connections come from :mod:`maru.sql.sqlite_guard`. PostgreSQL sessions are READ ONLY, and
every pooled session is reset when it returns to the pool (advisory locks released, settings and
role reset), so nothing one query does outlives it. A READ ONLY transaction still lets a privileged
role create replication slots or reset statistics; :func:`privilege_warning` says so, and the
README shows the SELECT-only role to connect as.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .sqlite_guard import MAX_VALUE_BYTES, open_guarded

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = ["check_database_url", "privilege_warning", "read_only_engine"]

_EXAMPLES = "e.g. sqlite:///chinook.db or postgresql+psycopg://reader@localhost/shop"
_BACKENDS = ("sqlite", "postgresql", "mysql", "mssql", "oracle")
_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db", ".db3")
_DRIVER_PACKAGES = {"MySQLdb": "mysqlclient", "psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]"}
_RESET_SESSION = (
    "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; "
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
)
"""What DISCARD ALL does, less forgetting prepared statements (psycopg keeps its own list of
them), plus putting the session back into READ ONLY mode."""


def check_database_url(url: str) -> URL:
    """``url`` parsed, or :class:`~maru.errors.ConfigurationError` naming what to write instead."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if "://" not in url:
        if url.lower().endswith(_SQLITE_SUFFIXES) or Path(url).is_file():
            raise ConfigurationError(f"{url!r} is a file path, not a database URL; did you mean sqlite:///{url}?")
        raise ConfigurationError(f"{url!r} is not a database URL; give a SQLAlchemy URL, {_EXAMPLES}")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"{url!r} is not a database URL; give a SQLAlchemy URL, {_EXAMPLES}") from exc
    try:
        parsed.get_dialect()
    except NoSuchModuleError as exc:
        raise ConfigurationError(_unknown_driver(parsed)) from exc
    return parsed


def _unknown_driver(parsed: URL) -> str:
    backend = parsed.get_backend_name()
    shown = parsed.render_as_string(hide_password=True)
    close = difflib.get_close_matches(backend, _BACKENDS, n=1)
    hint = f"did you mean {close[0]}://{shown.split('://', 1)[1]}?" if close else f"use a known one, {_EXAMPLES}"
    return f"unknown SQL driver {parsed.drivername!r} in {shown}; {hint}"


def read_only_engine(url: str, *, max_value_bytes: int = MAX_VALUE_BYTES) -> Engine:
    """An engine that can only read ``url``: guarded SQLite, or READ ONLY PostgreSQL sessions that
    are reset on their way back to the pool."""
    from sqlalchemy import create_engine

    parsed = check_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed, url)
        return create_engine("sqlite://", creator=lambda: open_guarded(path, max_value_bytes=max_value_bytes))
    postgres = parsed.get_backend_name() == "postgresql"
    try:
        engine = create_engine(url, pool_pre_ping=True, **({"pool_reset_on_return": None} if postgres else {}))
    except ModuleNotFoundError as exc:
        package = _DRIVER_PACKAGES.get(exc.name or "", exc.name)
        raise ConfigurationError(
            f"the driver for {parsed.drivername!r} is not installed (no module {exc.name!r}); pip install {package}"
        ) from exc
    if postgres:
        _keep_sessions_read_only(engine)
    return engine


def _sqlite_file(parsed: URL, url: str) -> str:
    path = parsed.database
    if not path or path == ":memory:":
        raise ConfigurationError("an in-memory SQLite database has nothing to query; give a file path")
    if not Path(path).is_file():
        raise ConfigurationError(f"SQLite database {path!r} does not exist; check the URL {url!r}")
    return path


def _keep_sessions_read_only(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        _run_outside_transaction(dbapi_conn, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    @event.listens_for(engine, "reset")
    def _reset(dbapi_conn: Any, _record: Any, reset_state: Any) -> None:
        dbapi_conn.rollback()
        if not reset_state.terminate_only:
            _run_outside_transaction(dbapi_conn, _RESET_SESSION)


def _run_outside_transaction(dbapi_conn: Any, sql: str) -> None:
    dbapi_conn.autocommit = True
    try:
        cursor = dbapi_conn.cursor()
        cursor.execute(sql)
        cursor.close()
    finally:
        dbapi_conn.autocommit = False


def privilege_warning(engine: Engine) -> str | None:
    """A warning when the role ``engine`` connects as can do more than read: a READ ONLY session
    does not stop a superuser's or a replication role's functions. ``None`` when it is a plain role
    (or the database is SQLite, opened read-only from the file)."""
    if engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT current_user, rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).one()
    except SQLAlchemyError:
        return None  # advisory: the query that follows reports an unreachable server in its own words
    user, powers = row[0], [name for name, held in zip(("superuser", "replication", "bypassrls"), row[1:], strict=True) if held]
    if not powers:
        return None
    return (
        f"the role {user!r} is {' and '.join(powers)}: maru's read-only session cannot stop every side "
        "effect such a role has. Connect as a SELECT-only role (the README's SQL section shows one)."
    )
