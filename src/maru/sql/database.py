"""``SQLDatabase``: a schema description for prompts and read-only, time-limited query execution.

Two locks stand between a model and the data: :func:`~maru.sql.validate.validate_sql` refuses
anything but one reading query with allow-listed functions, and the connection itself cannot write
(:mod:`maru.sql.engine`) — SQLite is opened read-only behind an authorizer and limits, PostgreSQL
runs each query in a ``READ ONLY`` transaction with a ``statement_timeout`` and resets the session
afterwards. SQLite's timeout is a timer that interrupts the query; the rows read are bounded in
count and in bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, SQLExecutionError
from .engine import check_database_url, privilege_warning, read_only_engine
from .sqlite_guard import MAX_VALUE_BYTES, interrupt_after
from .tables import Schema, TableSelector, choose_tables, default_table_selector
from .validate import ValidatedSQL, validate_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["QueryResult", "SQLDatabase", "quote_identifier"]


@dataclass(slots=True)
class QueryResult:
    """Rows of one query. ``truncated`` is true when the row limit cut the result."""

    sql: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_markdown(self, max_rows: int = 20) -> str:
        """The result as a small markdown table — what the answer prompt shows the model."""
        if not self.columns:
            return "(no columns)"
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row in self.rows[:max_rows]:
            lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
        if len(self.rows) > max_rows:
            lines.append(f"… {len(self.rows) - max_rows} more rows")
        if not self.rows:
            lines.append("(no rows)")
        return "\n".join(lines)


class SQLDatabase:
    """A database at a SQLAlchemy URL, described for prompts and queried read-only.

    ``table_selector`` ranks tables for a question (:mod:`maru.sql.tables`); ``None``: by meaning
    with the bundled multilingual model when installed, else by word overlap. A query stops after
    ``timeout_s``; its rows may hold at most ``max_result_bytes`` of text and blobs, and on SQLite
    no value may grow past ``max_value_bytes``."""

    def __init__(
        self,
        url: str,
        *,
        sample_rows: int = 3,
        include_tables: Sequence[str] | None = None,
        max_rows: int = 1000,
        timeout_s: float = 10.0,
        table_selector: TableSelector | None = None,
        max_value_bytes: int = MAX_VALUE_BYTES,
        max_result_bytes: int = 32_000_000,
    ) -> None:
        check_database_url(url)  # a wrong URL fails here, with the fix, not at the first query
        self.url = url
        self.max_value_bytes = max_value_bytes
        self.max_result_bytes = max_result_bytes
        self.table_selector = table_selector
        self.sample_rows = sample_rows
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self._include = list(include_tables) if include_tables else None
        self._engine: Engine | None = None
        self._descriptions: dict[str, str] = {}
        self._columns: dict[str, list[str]] = {}
        self._schema: Schema | None = None

    # ------------------------------------------------------------------ connection
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = read_only_engine(self.url, max_value_bytes=self.max_value_bytes)
        return self._engine

    def privilege_warning(self) -> str | None:
        """What the connecting role could still do despite the read-only session (a PostgreSQL
        superuser, say), or ``None``; ``maru sql`` prints it."""
        return privilege_warning(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ------------------------------------------------------------------ schema
    def table_names(self) -> list[str]:
        from sqlalchemy import inspect

        names = sorted(inspect(self.engine).get_table_names())
        if self._include is not None:
            missing = set(self._include) - set(names)
            if missing:
                raise ConfigurationError(
                    f"include_tables names unknown tables {sorted(missing)}; the database has {names}"
                )
            names = [n for n in names if n in self._include]
        return names

    def describe(self, tables: Sequence[str] | None = None) -> str:
        """``CREATE TABLE`` text for each table (columns, types, keys) followed by sample rows."""
        chosen = list(tables) if tables is not None else self.table_names()
        return "\n\n".join(self._describe_table(t) for t in chosen)

    def columns(self, tables: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Table → its column names, in table order, for ``tables`` (default: all) — what a grammar
        of the schema needs, without the types and sample rows of :meth:`describe`."""
        chosen = list(tables) if tables is not None else self.table_names()
        missing = [t for t in chosen if t not in self._columns]
        if missing:
            from sqlalchemy import inspect

            insp = inspect(self.engine)
            for table in missing:
                self._columns[table] = [c["name"] for c in insp.get_columns(table)]
        return {t: list(self._columns[t]) for t in chosen}

    def _describe_table(self, table: str) -> str:
        cached = self._descriptions.get(table)
        if cached is not None:
            return cached
        from sqlalchemy import inspect

        insp = inspect(self.engine)
        columns = insp.get_columns(table)
        pk = set((insp.get_pk_constraint(table) or {}).get("constrained_columns") or [])
        lines = []
        for col in columns:
            line = f"  {quote_identifier(col['name'])} {col['type']}"
            if col["name"] in pk and len(pk) == 1:
                line += " PRIMARY KEY"
            if not col.get("nullable", True) and col["name"] not in pk:
                line += " NOT NULL"
            lines.append(line)
        if len(pk) > 1:
            lines.append(f"  PRIMARY KEY ({', '.join(quote_identifier(c) for c in sorted(pk))})")
        for fk in insp.get_foreign_keys(table):
            if fk.get("referred_table"):
                lines.append(
                    f"  FOREIGN KEY ({', '.join(quote_identifier(c) for c in fk['constrained_columns'])}) "
                    f"REFERENCES {quote_identifier(fk['referred_table'])}"
                    f"({', '.join(quote_identifier(c) for c in fk['referred_columns'])})"
                )
        text = f"CREATE TABLE {quote_identifier(table)} (\n" + ",\n".join(lines) + "\n)"
        if self.sample_rows > 0:
            names = [c["name"] for c in columns]
            sample = self._sample(table, names)
            text += f"\n/* {len(sample)} sample rows of {table}:\n" + "\t".join(names)
            for row in sample:
                text += "\n" + "\t".join(_short(v) for v in row)
            text += "\n*/"
        self._descriptions[table] = text
        return text

    def _sample(self, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
        from sqlalchemy import column, select
        from sqlalchemy import table as sa_table

        query: Any = select(*[column(c) for c in columns]).select_from(sa_table(table)).limit(self.sample_rows)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def schema(self) -> Schema:
        """Each table's columns and the tables its foreign keys point to: what table selection reads."""
        if self._schema is None:
            from sqlalchemy import inspect

            insp = inspect(self.engine)
            names = self.table_names()
            references = {
                name: [fk["referred_table"] for fk in insp.get_foreign_keys(name) if fk.get("referred_table")]
                for name in names
            }
            self._schema = Schema(self.columns(names), references)
        return self._schema

    def relevant_tables(self, question: str, k: int = 5) -> list[str]:
        """Tables worth showing the model for ``question``: all of them when there are at most ``k``,
        else the ``k`` the table selector ranks first (by meaning, in any language, by default),
        plus the tables their foreign keys point to."""
        if self.table_selector is None:
            self.table_selector = default_table_selector()
        return choose_tables(question, self.schema(), k, self.table_selector)

    # ------------------------------------------------------------------ queries
    def validate(self, sql: str) -> ValidatedSQL:
        return validate_sql(sql, dialect=self.dialect, max_rows=self.max_rows)

    def run(self, sql: str) -> QueryResult:
        """Validate ``sql``, then run it read-only under the timeout. Refusals raise
        :class:`~maru.errors.UnsafeSQLError`; database errors :class:`~maru.errors.SQLExecutionError`."""
        checked = self.validate(sql)
        return self._execute(checked.sql)

    def _execute(self, sql: str) -> QueryResult:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        start = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self.timeout_s * 1000)}")
                with _deadline(conn, self.timeout_s):
                    result = conn.execute(text(sql).execution_options(no_parameters=True))
                    columns = list(result.keys())
                    rows = self._fetch(result, sql)
                conn.rollback()
        except DBAPIError as exc:
            raise SQLExecutionError(self._explain(exc), sql) from exc
        except SQLAlchemyError as exc:
            raise SQLExecutionError(f"the query failed: {exc}", sql) from exc
        truncated = len(rows) > self.max_rows
        return QueryResult(sql, columns, rows[: self.max_rows], truncated, time.perf_counter() - start)

    def _fetch(self, result: Iterable[Any], sql: str) -> list[tuple[Any, ...]]:
        """Up to ``max_rows + 1`` rows (one more shows the limit cut), refusing a result whose text
        and blobs pass ``max_result_bytes`` before it fills memory."""
        rows: list[tuple[Any, ...]] = []
        size = 0
        for row in result:
            rows.append(tuple(row))
            size += sum(len(v) for v in rows[-1] if isinstance(v, (str, bytes)))
            if size > self.max_result_bytes:
                raise SQLExecutionError(
                    f"the result is larger than {self.max_result_bytes:,} bytes after {len(rows)} rows; "
                    "select fewer or shorter columns, or fewer rows",
                    sql,
                )
            if len(rows) > self.max_rows:
                break
        return rows

    def _explain(self, exc: Any) -> str:
        """The database's refusal in words that say what happened and what to do."""
        message = " ".join((str(exc.orig) if exc.orig is not None else str(exc)).split())  # one line
        lowered = message.lower()
        if "interrupted" in lowered:
            return f"the query ran longer than {self.timeout_s:g} s and was stopped; ask for less, or filter before joining"
        if "too big" in lowered:
            return (
                f"a value grew past the {self.max_value_bytes:,}-byte limit (max_value_bytes) and the query "
                "was stopped; build shorter values"
            )
        if "not authorized" in lowered or "too many attached" in lowered:
            return (
                f"the read-only connection refused the statement ({message}): it is not allowed; only "
                "reading, with allow-listed functions, is"
            )
        if "too large (maximum depth" in lowered or "stack overflow" in lowered:
            return f"the SQL nests too deeply for the database's depth limit; write it flatter ({message})"
        return f"the database refused the query: {message}"


# ---------------------------------------------------------------------------- helpers
def _deadline(conn: Any, timeout_s: float) -> AbstractContextManager[None]:
    """SQLite's deadline (an interrupt from a timer); PostgreSQL has its statement_timeout."""
    if conn.dialect.name == "sqlite":
        return interrupt_after(conn.connection.dbapi_connection, timeout_s)
    return nullcontext()


def quote_identifier(name: str) -> str:
    """``name`` as SQL text: plain names as they are, anything else in double quotes."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _short(value: Any, limit: int = 60) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
