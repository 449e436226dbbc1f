"""Natural language to SQL: question → prompt with the pruned schema → model (held to a SELECT
grammar of that schema when it accepts one) → validated SQL → read-only execution (repair rounds on a refusal or a database error) → an answer in words.

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
from ..errors import SQLExecutionError, UnsafeSQLError
from ..messages import AIMessage, BaseMessage, HumanMessage
from ..prompts import ChatPromptTemplate
from .database import QueryResult, SQLDatabase
from .grammar import select_grammar

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

_REPAIR_REQUEST = (
    "That query failed with this error:\n{error}\n"
    "Write a corrected {dialect} SELECT query, using only the tables and columns in the schema above."
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
    ``{"question": ...}``.

    A query the validator refuses (it does not parse, is not a SELECT, calls a forbidden function)
    or the database rejects is shown back to the model with the error, up to ``max_repairs`` times
    (``repair=False``: none); the schema stays in the conversation, so a small model can fix a
    wrong table or column name. A refused query never runs: when the repairs run out, the last
    error is raised.

    ``constrain`` holds the SQL-writing calls to a grammar of SELECT over the picked tables'
    columns (:func:`~maru.sql.grammar.select_grammar`), so a small model writes a query rather than
    prose. ``None`` (default): when the model accepts grammars (in-process llama.cpp); ``True``:
    always (say, a llama.cpp server behind ``OpenAIChat``); ``False``: never."""

    io_bound = True

    def __init__(
        self,
        model: ChatModel,
        db: SQLDatabase,
        *,
        answer: bool = True,
        repair: bool = True,
        max_repairs: int = 2,
        max_tables: int = 5,
        constrain: bool | None = None,
    ) -> None:
        if max_repairs < 0:
            raise ValueError("max_repairs must be 0 or more")
        self.model, self.db = model, db
        self.answer, self.max_tables = answer, max_tables
        self.max_repairs = max_repairs if repair else 0
        self.constrain = getattr(model, "accepts_grammar", False) if constrain is None else constrain

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> SQLAnswer:
        question = _question(input)
        tables = self.db.relevant_tables(question, self.max_tables)
        messages = self._query_messages(question, tables)
        result, repairs = self._query_with_repairs(messages, self._query_params(tables), config)
        text = self._answer(question, result, config) if self.answer else None
        return SQLAnswer(question, result.sql, result, text, repaired=repairs > 0)

    def _query_messages(self, question: str, tables: list[str]) -> list[BaseMessage]:
        return _QUERY_PROMPT.format_messages(
            dialect=self.db.dialect,
            schema=self.db.describe(tables),
            question=question,
            max_rows=self.db.max_rows,
        )

    def _query_params(self, tables: list[str]) -> dict[str, Any]:
        """Request parameters of the SQL-writing calls: the SELECT grammar when constrained."""
        return {"grammar": select_grammar(self.db.columns(tables))} if self.constrain else {}

    def _query_with_repairs(
        self, messages: list[BaseMessage], params: dict[str, Any], config: RunConfig | None
    ) -> tuple[QueryResult, int]:
        """Ask for SQL and run it; on a refusal or a database error, show the model its error."""
        for attempt in range(self.max_repairs + 1):
            sql = extract_sql(str(self.model.invoke(messages, config, **params).content))
            try:
                return self.db.run(sql), attempt
            except (UnsafeSQLError, SQLExecutionError) as exc:
                if attempt == self.max_repairs:
                    raise
                request = _REPAIR_REQUEST.format(error=exc, dialect=self.db.dialect)
                messages = [*messages, AIMessage(f"```sql\n{sql}\n```"), HumanMessage(request)]
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _answer(self, question: str, result: QueryResult, config: RunConfig | None) -> str:
        messages = _ANSWER_PROMPT.format_messages(
            question=question, sql=result.sql, result=result.as_markdown()
        )
        return str(self.model.invoke(messages, config).content).strip()


def _question(input: Any) -> str:
    question = input["question"] if isinstance(input, dict) else input
    if not isinstance(question, str) or not question.strip():
        raise ValueError("SQLQueryChain takes a question string (or {'question': ...})")
    return question
