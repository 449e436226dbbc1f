"""``maru sql``: ask a database a question (a chat model writes validated, read-only SQL), run
SQL directly with ``--query``, or print the schema the model sees with ``--schema``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import chat
from ._extras import needs_extra
from ._shared import fail, make_console


@needs_extra("sql", "maru sql")
def sql_command(
    question: Annotated[str | None, typer.Argument(help="A question about the data, in any language.")] = None,
    db: Annotated[str, typer.Option("--db", envvar="MARU_SQL_DB", help="SQLAlchemy URL, e.g. sqlite:///chinook.db", show_envvar=True)] = "",
    query: Annotated[str | None, typer.Option("--query", "-q", help="Run this SQL (validated, read-only) instead of asking a model.")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the schema description the model sees, then exit.")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Model name.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Row limit enforced on every query.")] = 1000,
) -> None:
    """Ask a database a question: the SQL that ran is shown, then the answer. Read-only, always."""
    from rich.syntax import Syntax

    from ..errors import ConfigurationError, SQLExecutionError, UnsafeSQLError
    from ..sql import SQLDatabase, SQLQueryChain

    if not db:
        fail("no database given", "Pass --db URL (e.g. --db sqlite:///chinook.db) or set MARU_SQL_DB.")
    console = make_console()
    database = SQLDatabase(db, max_rows=max_rows)
    try:
        warning = database.privilege_warning()
        if warning:
            make_console(stderr=True).print(f"[yellow]warning:[/] {warning}")
        if schema:
            console.print(Syntax(database.describe(database.relevant_tables(question, 8) if question else None), "sql", word_wrap=True))
            return
        if query:
            result = database.run(query)
            console.print(Syntax(result.sql, "sql", word_wrap=True))
            console.print(_rows_table(result))
            return
        if not question:
            fail("nothing to do", "Give a question, or --query SQL, or --schema.")
        chain = SQLQueryChain(chat.make_chat_model(model or None, base_url or None), database)
        answer = chain.invoke(question)
        console.print(Syntax(answer.sql, "sql", word_wrap=True))
        if answer.repaired:
            console.print("[dim](the first query failed; this is the repaired one)[/]")
        console.print(_rows_table(answer.result))
        console.print(f"[bold]answer:[/] {answer.answer}")
    except UnsafeSQLError as exc:
        fail(f"refused: {exc}")
    except (SQLExecutionError, ConfigurationError) as exc:
        fail(str(exc))
    finally:
        database.close()


def _rows_table(result: Any, limit: int = 20) -> Any:
    from rich.table import Table

    table = Table(*result.columns, show_header=True, header_style="bold")
    for row in result.rows[:limit]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    if len(result.rows) > limit:
        table.caption = f"{len(result.rows)} rows, first {limit} shown"
    elif not result.rows:
        table.caption = "no rows"
    return table
