"""Natural language to SQL: question → prompt with the pruned schema → model → validated SQL →
read-only execution (one repair round on a database error) → an answer in words.

``SQLQueryChain`` is a runnable, so it batches, streams its final value and shows every model call
in traces. What it returns is an :class:`SQLAnswer` holding the SQL that actually ran, so a user can
always see (and audit) the query behind an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import SQLExecutionError
from ..prompts import ChatPromptTemplate
from .database import QueryResult, SQLDatabase

if TYPE_CHECKING:
    from ..models.base import ChatModel

__all__ = ["SQLAnswer", "SQLQueryChain", "extract_sql"]

_QUERY_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You write one {dialect} SELECT query that answers the user's question from this schema.\n"
            "Use only the tables and columns shown. Never modify data. Return at most {max_rows} rows.\n"
            "Reply with the SQL only, in a ```sql code block.\n\n{schema}",
        ),
        ("human", "{question}"),
    ]
)

_REPAIR_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You write one {dialect} SELECT query that answers the user's question from this schema.\n"
            "Use only the tables and columns shown. Reply with the SQL only, in a ```sql code block."
            "\n\n{schema}",
        ),
        ("human", "{question}"),
        ("ai", "```sql\n{sql}\n```"),
        ("human", "That query failed with this error:\n{error}\nWrite a corrected query."),
    ]
)

_ANSWER_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the user's question in one or two sentences from the result of the SQL query below. "
            "If the result is empty, say that nothing matched.\n\nSQL:\n{sql}\n\nResult:\n{result}",
        ),
        ("human", "{question}"),
    ]
)

_FENCE = re.compile(r"```(?:sql|SQL|sqlite|postgresql)?\s*\n?(.*?)```", re.DOTALL)


def extract_sql(text: str) -> str:
    """The SQL in a model reply: the first fenced block, else the text from the first SELECT/WITH."""
    match = _FENCE.search(text)
    if match:
        return match.group(1).strip()
    start = re.search(r"\b(WITH|SELECT)\b", text, re.IGNORECASE)
    body = text[start.start():] if start else text
    return body.strip().rstrip("`").strip()


@dataclass(slots=True)
class SQLAnswer:
    """The question, the SQL that ran, its rows, the answer in words and whether a repair was needed."""

    question: str
    sql: str
    result: QueryResult
    answer: str | None
    repaired: bool = False

    def __str__(self) -> str:
        return self.answer if self.answer is not None else self.result.as_markdown()


class SQLQueryChain(Runnable[Any, SQLAnswer]):
    """Answer questions from a database with a chat model. Input: a question string or
    ``{"question": ...}``."""

    io_bound = True

    def __init__(
        self,
        model: ChatModel,
        db: SQLDatabase,
        *,
        answer: bool = True,
        repair: bool = True,
        max_tables: int = 5,
    ) -> None:
        self.model, self.db = model, db
        self.answer, self.repair, self.max_tables = answer, repair, max_tables

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> SQLAnswer:
        question = input["question"] if isinstance(input, dict) else input
        if not isinstance(question, str) or not question.strip():
            raise ValueError("SQLQueryChain takes a question string (or {'question': ...})")
        schema = self.db.describe(self.db.relevant_tables(question, self.max_tables))
        values = {"dialect": self.db.dialect, "schema": schema, "question": question, "max_rows": self.db.max_rows}
        sql = self._ask_sql(_QUERY_PROMPT, values, config)
        repaired = False
        try:
            result = self.db.run(sql)
        except SQLExecutionError as exc:
            if not self.repair:
                raise
            repair = {"dialect": values["dialect"], "schema": schema, "question": question}
            sql = self._ask_sql(_REPAIR_PROMPT, {**repair, "sql": sql, "error": str(exc)}, config)
            result = self.db.run(sql)
            repaired = True
        text = None
        if self.answer:
            messages = _ANSWER_PROMPT.format_messages(
                question=question, sql=result.sql, result=result.as_markdown()
            )
            text = str(self.model.invoke(messages, config).content).strip()
        return SQLAnswer(question, result.sql, result, text, repaired)

    def _ask_sql(self, prompt: ChatPromptTemplate, values: dict[str, Any], config: RunConfig | None) -> str:
        reply = self.model.invoke(prompt.format_messages(**values), config)
        return extract_sql(str(reply.content))
