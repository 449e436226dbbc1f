"""The ``maru`` command. Nothing in the library imports this package; it sits on top of it.

- ``maru demo``: the offline tour (:mod:`.demo`; its programs are in :mod:`maru.demo`).
- ``maru chat``: a streaming chat REPL against any OpenAI-compatible endpoint (:mod:`.chat`).
- ``maru ingest PATH…`` / ``maru ask QUESTION``: a local knowledge base with citations (:mod:`.rag`).
- ``maru eval run / list / show / compare``: score a knowledge base on a dataset, compare experiments (:mod:`.eval`).
- ``maru sql``: ask a database, read-only (:mod:`.sql`).
- ``maru run module:object --input JSON``: invoke (or stream) any runnable or function (:mod:`.run`).
- ``maru usage REPORT.json``: the table of a tracked run's usage and cost (:mod:`.usage`).
- ``maru serve module:object``: serve a runnable over HTTP (:mod:`.serve`).
- ``maru trace ls / show ID / ui``: browse recorded traces (:mod:`.trace`).
- ``maru launch JOB.toml`` / ``maru jobs …``: run and follow training jobs (:mod:`.jobs`).
- ``maru train plot RUN_DIR``: look at training runs (:mod:`.train`).
- ``maru mcp serve module:object``: serve tools (or a runnable) to MCP clients over stdio (:mod:`.mcp`).

Each command group is a module; this one only assembles them. An error that is the user's to fix
prints as one message (:mod:`._errors`); ``--debug`` shows its traceback. Importing it stays light: models,
prompts, the ``openai`` SDK, torch and rich are imported inside the commands that use them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__
from . import chat, demo, eval, jobs, mcp, rag, run, serve, sql, trace, train, usage
from ._errors import DEBUG_ENV, MaruGroup
from ._shared import command_group, set_debugging

__all__ = ["app", "main"]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"maru {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar=DEBUG_ENV, help="Show the traceback of an error instead of one message."
        ),
    ] = False,
) -> None:
    """maru: build LLM applications and train PyTorch models at scale."""
    set_debugging(debug)


app = command_group(
    "maru", help="maru: build LLM applications and train PyTorch models at scale.", callback=_root, cls=MaruGroup
)

app.command()(demo.demo)
app.command()(chat.chat)
app.command()(rag.ingest)
app.command()(rag.ask)
app.command("sql")(sql.sql_command)
app.command()(run.run)
app.command()(usage.usage)
app.command("serve")(serve.serve_command)
app.add_typer(trace.trace_app, name="trace")
app.add_typer(eval.eval_app, name="eval")
app.command("launch")(jobs.launch)
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(train.train_app, name="train")
app.add_typer(mcp.mcp_app, name="mcp")


def main() -> None:
    """Console-script entry point (``maru = "maru.cli:main"``)."""
    app()
