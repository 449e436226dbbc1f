"""Natural language to SQL that can only read: schema description, validation, read-only execution."""

from .chain import SQLAnswer, SQLQueryChain, extract_sql
from .database import QueryResult, SQLDatabase
from .validate import ValidatedSQL, validate_sql

__all__ = [
    "QueryResult",
    "SQLAnswer",
    "SQLDatabase",
    "SQLQueryChain",
    "ValidatedSQL",
    "extract_sql",
    "validate_sql",
]
