"""Reading SQL text into sqlglot trees, with refusals a user can act on.

sqlglot's own errors name its classes and tokens (``Required keyword: 'this' missing for <class
'sqlglot.expressions.query.Where'>``); a user needs the line, the column and the word where the SQL
went wrong. Nesting is bounded before parsing, because sqlglot parses and prints recursively and a
few dozen parentheses end in a raw ``RecursionError``.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import UnsafeSQLError

__all__ = ["MAX_NESTING", "parse_statements", "render"]

MAX_NESTING = 32
"""Deepest parenthesis nesting accepted; sqlglot itself fails near 50, real questions need < 10."""

_TOO_DEEP = (
    "the SQL nests too deeply to check (more than {limit} levels of parentheses or chained operators); "
    "write it flatter, e.g. with a WITH clause"
)


def parse_statements(text: str, read: str) -> list[Any]:
    """The statements in ``text`` as sqlglot trees, or :class:`~maru.errors.UnsafeSQLError` saying
    where the text stops being SQL in ``read``'s dialect."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ParseError, TokenError

    dialect = Dialect.get_or_raise(read)
    try:
        tokens = dialect.tokenize(text)
    except TokenError as exc:
        raise UnsafeSQLError(_unreadable(text)) from exc
    _check_nesting(tokens)
    try:
        with _sqlglot_quiet():
            return [s for s in dialect.parser().parse(tokens, text) if s is not None]
    except ParseError as exc:
        raise UnsafeSQLError(_where(exc)) from exc
    except RecursionError as exc:
        raise UnsafeSQLError(_TOO_DEEP.format(limit=MAX_NESTING)) from exc


def render(tree: Any, read: str) -> str:
    """``tree`` as SQL text in ``read``'s dialect; a tree too deep to print is a refusal, not a crash."""
    try:
        return str(tree.sql(dialect=read))
    except RecursionError as exc:
        raise UnsafeSQLError(_TOO_DEEP.format(limit=MAX_NESTING)) from exc


def _check_nesting(tokens: list[Any]) -> None:
    from sqlglot.tokens import TokenType

    depth = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_NESTING:
                raise UnsafeSQLError(
                    f"the SQL nests parentheses more than {MAX_NESTING} deep (line {token.line}); "
                    "write it flatter, e.g. with a WITH clause"
                )
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1


def _where(exc: Any) -> str:
    """Line, column, the word there and what was wrong, from sqlglot's first error."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return "the SQL does not parse; check it for a typo or a missing part"
    first = errors[0]
    word = str(first.get("highlight") or "").strip()
    line, end = first.get("line") or 1, first.get("col") or 1
    column = max(1, end - len(word) + 1)
    return (
        f"the SQL does not parse at line {line}, column {column}, near {word!r}: "
        f"{_reason(str(first.get('description') or ''), word)}; fix the SQL there"
    )


_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*\.(\w+)'>")


def _reason(description: str, word: str) -> str:
    if description.startswith("Expecting "):
        return f"a {description.removeprefix('Expecting ').strip()!r} is missing"
    if description.startswith("Invalid expression / Unexpected token"):
        return f"{word!r} is not expected here (a misspelled keyword, or a missing comma or operand before it?)"
    if description.startswith("Expected table name"):
        return "a table name is expected here"
    missing = _MISSING.match(description)
    if missing:
        return f"{word!r} is incomplete: the part after it is missing"
    return re.sub(r"\s*<[^>]*>", "", description).strip() or "the SQL is not valid here"


def _unreadable(text: str) -> str:
    """The tokenizer fails on an unclosed quote or a character SQL does not have."""
    for quote in ("'", '"', "`"):
        if text.count(quote) % 2:
            opened = text.rfind(quote)
            line = text.count("\n", 0, opened) + 1
            column = opened - (text.rfind("\n", 0, opened) + 1) + 1
            return (
                f"the SQL has an unclosed {quote} quote (opened at line {line}, column {column}); "
                "close the string or name"
            )
    return "the SQL contains text that is not SQL (an unclosed quote or comment, or a stray character)"


_PARSING = contextvars.ContextVar("maru_sql_parsing", default=False)


class _WhileParsing(logging.Filter):
    """Drops sqlglot's records while this thread parses: its "unsupported syntax, falling back
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
