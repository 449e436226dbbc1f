"""Validation of generated SQL with ``sqlglot``: exactly one read-only query, a row limit enforced.

The validator is the first of two locks (the second is the read-only, guarded connection in
:mod:`maru.sql.engine`): it parses the text into a syntax tree — never pattern-matches the
string — and refuses anything that is not a single SELECT (or WITH … SELECT, or a set operation of
selects), any node that writes or changes the session anywhere in the tree (a DELETE inside a CTE,
SELECT … INTO, FOR UPDATE), every function call that is not on an allow-list, and PostgreSQL's
system catalogs. An allow-list, because a READ ONLY transaction does not stop a privileged role's
functions (replication slots, statistics resets, advisory locks, settings) and a deny-list is
always one function short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import UnsafeSQLError
from .parse import parse_statements, render

__all__ = ["ALLOWED_FUNCTIONS", "ValidatedSQL", "allowed_functions", "validate_sql"]

ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates
        "count", "sum", "avg", "min", "max", "total", "group_concat", "array_agg", "logical_and",
        "logical_or", "every", "stddev", "stddev_pop", "stddev_samp", "variance", "variance_pop",
        "median", "percentile_cont", "percentile_disc",
        # numbers, NULLs, conditions, types
        "abs", "round", "ceil", "floor", "sign", "sqrt", "exp", "ln", "log", "trunc", "mod",
        "greatest", "least", "coalesce", "nullif", "if", "case", "cast", "try_cast", "typeof", "array",
        # text whose result and cost grow with the input only (not lpad/repeat: a number sets their size)
        "length", "octet_length", "lower", "upper", "trim", "substring", "concat", "concat_ws",
        "left", "right", "reverse", "unicode", "chr",
        # dates and times
        "date", "time", "datetime", "julianday", "strftime", "time_to_str", "ts_or_ds_to_timestamp",
        "unixepoch", "current_date", "current_time", "current_timestamp", "extract",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
        "first_value", "last_value", "nth_value",
    }
)
"""Functions any dialect may call, by the name sqlglot gives them: the written name for a function
it does not model (``julianday``), its own name for one it does (``substr`` → ``substring``,
``instr`` → ``str_position``). Operators (AND, ``||``, ``->``, EXISTS …) are not calls."""

_DIALECT_FUNCTIONS = {
    # Searching and replacing inside text cost the product of two lengths in one SQLite step,
    # where no deadline can stop them; PostgreSQL's statement_timeout can.
    "postgres": frozenset(
        {
            "replace", "str_position", "split_part", "initcap", "timestamp_trunc", "date_trunc",
            "age", "str_to_date", "make_date", "unix_to_time", "to_char",
        }
    ),
}

_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "sqlite": "sqlite", "mysql": "mysql"}


def allowed_functions(dialect: str) -> frozenset[str]:
    """The function names ``dialect`` (SQLAlchemy's or sqlglot's name) may call."""
    read = _DIALECTS.get(dialect, dialect)
    return ALLOWED_FUNCTIONS | _DIALECT_FUNCTIONS.get(read, frozenset())


@dataclass(frozen=True, slots=True)
class ValidatedSQL:
    """The query to run (limit applied, in the database's dialect) and what the model wrote."""

    sql: str
    original: str
    limited: bool


def validate_sql(sql: str, *, dialect: str = "sqlite", max_rows: int = 1000) -> ValidatedSQL:
    """Parse ``sql`` and return it safe to run, or raise :class:`~maru.errors.UnsafeSQLError`.

    ``dialect`` is SQLAlchemy's dialect name (``sqlite``, ``postgresql`` …). A missing row limit, or
    one above ``max_rows``, becomes ``LIMIT max_rows``.
    """
    read = _DIALECTS.get(dialect, dialect)
    tree = _one_query(sql, read)
    _refuse_writes(tree, read)
    _refuse_calls(tree, read)
    _refuse_system_catalogs(tree, read)
    limited = _enforce_limit(tree, max_rows)
    return ValidatedSQL(sql=render(tree, read), original=sql, limited=limited)


def _one_query(sql: str, read: str) -> Any:
    from sqlglot import exp

    text = sql.strip()
    if not text:
        raise UnsafeSQLError("the generated SQL is empty; ask for one SELECT query")
    statements = parse_statements(text, read)
    if len(statements) != 1:
        raise UnsafeSQLError(
            f"expected exactly one statement, got {len(statements)}; run one SELECT query at a time"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeSQLError(
            f"only SELECT / WITH queries may run, not {tree.key.upper()}; this connection is read-only"
        )
    return tree


def _forbidden_node_types() -> tuple[type, ...]:
    from sqlglot import exp

    names = (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command",
        "Pragma", "Attach", "Detach", "Copy", "Set", "Transaction", "Commit", "Rollback", "Use",
        "Grant", "Revoke", "Into", "Lock", "LoadData", "Analyze", "Kill", "Cache", "Uncache", "Refresh",
    )
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def _refuse_writes(tree: Any, read: str) -> None:
    forbidden = _forbidden_node_types()
    for node in tree.walk():
        if isinstance(node, forbidden):
            kind: str = getattr(node, "key", "a statement")
            raise UnsafeSQLError(
                f"the query contains {kind.upper()} ({render(node, read)[:80]!r}), which can "
                "write or change the session; only reading queries may run"
            )


def _refuse_calls(tree: Any, read: str) -> None:
    from sqlglot import exp

    allowed = allowed_functions(read)
    for node in tree.walk():
        if not isinstance(node, exp.Func) or isinstance(node, (exp.Binary, exp.Unary, exp.Predicate)):
            continue  # not a call, or an operator that sqlglot models as a function (AND, ||, ->)
        if _function_name(node) not in allowed:
            raise UnsafeSQLError(
                f"the function {_written_name(node, read)}() is not on the allow-list of functions a question needs (it "
                "could touch files, server state or memory); rewrite the query without it"
            )
        if read == "sqlite" and isinstance(node, exp.Trim) and node.args.get("expression") is not None:
            raise UnsafeSQLError(
                "trim() with a set of characters is not allowed on SQLite (its cost grows with both "
                "lengths in one uninterruptible step); use trim(x) or substr()"
            )


def _function_name(node: Any) -> str:
    """A call's name as the allow-list spells it: written for an unknown function, sqlglot's own
    for one it models."""
    from sqlglot import exp

    return str(node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _written_name(node: Any, read: str) -> str:
    """The name a user wrote (``instr``, not sqlglot's ``str_position``), for the refusal."""
    head = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", render(node, read))
    return head.group(1).lower() if head else _function_name(node)


def _refuse_system_catalogs(tree: Any, read: str) -> None:
    """PostgreSQL's catalogs hold settings, other sessions' queries and, for a superuser, password
    hashes; a question about the data never needs them."""
    if read != "postgres":
        return
    from sqlglot import exp

    for table in tree.find_all(exp.Table):
        if table.db.lower() in ("pg_catalog", "pg_toast") or table.name.lower().startswith("pg_"):
            raise UnsafeSQLError(
                f"the query reads the system catalog {table.name!r}; only the database's own tables may be queried"
            )


def _enforce_limit(tree: Any, max_rows: int) -> bool:
    from sqlglot import exp

    limit = tree.args.get("limit")
    if limit is not None:
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= max_rows:
            return False
        limit.set("expression", exp.Literal.number(max_rows))
        return True
    tree.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
    return True
