"""Validation of generated SQL with ``sqlglot``: exactly one read-only query, a row limit enforced.

The validator is the first of two locks (the second is the read-only connection in
:mod:`maru.sql.database`): it parses the text into a syntax tree — never pattern-matches the
string — and refuses anything that is not a single SELECT (or WITH … SELECT, or a set operation of
selects), any node that writes or changes the session anywhere in the tree (a DELETE inside a CTE,
SELECT … INTO, FOR UPDATE), and functions that touch files, extensions or server state.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import UnsafeSQLError

__all__ = ["FORBIDDEN_FUNCTIONS", "ValidatedSQL", "validate_sql"]

FORBIDDEN_FUNCTIONS = frozenset(
    {
        # SQLite: extensions, the file system, the shell's helpers
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress",
        # PostgreSQL: files, large objects, other servers, settings, sequences, sessions, sleeping
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export",
        "lo_unlink", "lo_create", "lo_put", "dblink", "dblink_exec", "dblink_connect", "set_config",
        "nextval", "setval", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend",
        "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_advisory_lock",
        "pg_advisory_xact_lock", "txid_current", "query_to_xml", "copy",
        # MySQL
        "load_file", "sleep", "benchmark", "get_lock",
    }
)

_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "sqlite": "sqlite", "mysql": "mysql"}


@dataclass(frozen=True, slots=True)
class ValidatedSQL:
    """The query to run (limit applied, in the database's dialect) and what the model wrote."""

    sql: str
    original: str
    limited: bool


def _forbidden_node_types() -> tuple[type, ...]:
    from sqlglot import exp

    names = (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command",
        "Pragma", "Attach", "Detach", "Copy", "Set", "Transaction", "Commit", "Rollback", "Use",
        "Grant", "Revoke", "Into", "Lock", "LoadData", "Analyze", "Kill", "Cache", "Uncache", "Refresh",
    )
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def validate_sql(sql: str, *, dialect: str = "sqlite", max_rows: int = 1000) -> ValidatedSQL:
    """Parse ``sql`` and return it safe to run, or raise :class:`~maru.errors.UnsafeSQLError`.

    ``dialect`` is SQLAlchemy's dialect name (``sqlite``, ``postgresql`` …). A missing row limit, or
    one above ``max_rows``, becomes ``LIMIT max_rows``.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    read = _DIALECTS.get(dialect, dialect)
    text = sql.strip()
    if not text:
        raise UnsafeSQLError("the generated SQL is empty; ask for one SELECT query")
    try:
        with _sqlglot_quiet():
            statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except ParseError as exc:
        raise UnsafeSQLError(f"the SQL does not parse as {read}: {exc}".splitlines()[0]) from exc
    if len(statements) != 1:
        raise UnsafeSQLError(
            f"expected exactly one statement, got {len(statements)}; run one SELECT query at a time"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeSQLError(
            f"only SELECT / WITH queries may run, not {tree.key.upper()}; this connection is read-only"
        )
    forbidden = _forbidden_node_types()
    for node in tree.walk():
        if isinstance(node, forbidden):
            raise UnsafeSQLError(
                f"the query contains {node.key.upper()} ({node.sql(dialect=read)[:80]!r}), which can "
                "write or change the session; only reading queries may run"
            )
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in FORBIDDEN_FUNCTIONS:
                raise UnsafeSQLError(f"the function {name}() is not allowed: it can touch files or server state")
    limited = _enforce_limit(tree, max_rows)
    return ValidatedSQL(sql=tree.sql(dialect=read), original=sql, limited=limited)


_PARSING = contextvars.ContextVar("maru_sql_parsing", default=False)


class _WhileParsing(logging.Filter):
    """Drops sqlglot's records while this thread validates: its "unsupported syntax, falling back
    to a Command" warning is about the model's SQL, which the refusal already explains."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _PARSING.get()


@contextmanager
def _sqlglot_quiet() -> Iterator[None]:
    """sqlglot's own logger, silent during our parse only (other threads and callers unaffected)."""
    logger = logging.getLogger("sqlglot")
    if not any(isinstance(f, _WhileParsing) for f in logger.filters):
        logger.addFilter(_WhileParsing())
    token = _PARSING.set(True)
    try:
        yield
    finally:
        _PARSING.reset(token)


def _enforce_limit(tree: object, max_rows: int) -> bool:
    from sqlglot import exp

    assert isinstance(tree, exp.Query)
    limit = tree.args.get("limit")
    if limit is not None:
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= max_rows:
            return False
        limit.set("expression", exp.Literal.number(max_rows))
        return True
    tree.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
    return True
