"""The ``maru`` command.

- ``maru demo``: the offline tour. Every section runs without a network or an API key; chat
  models in it are ``ScriptedChatModel``, a scripted test double, and the output says so.
- ``maru chat``: a streaming chat REPL against any OpenAI-compatible endpoint.
- ``maru run module:object --input JSON``: invoke (or stream) any runnable or function.
- ``maru usage REPORT.json``: the table of a tracked run's usage and cost (``UsageTracker.save``).
- ``maru trace ls / show ID / ui``: browse recorded traces in the terminal or a local web page.
- ``maru serve module:object``: serve a runnable over HTTP (invoke, batch, SSE streams).

Importing this module stays light: models, prompts and the ``openai`` SDK are imported inside the
commands that use them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._version import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .core import Runnable
    from .tracing.store import RunStore

app = typer.Typer(
    name="maru",
    help="maru: build LLM applications and train PyTorch models at scale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

USAGE_ERROR = 2
"""Exit code for a command that cannot start: bad arguments, missing configuration."""


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(message: str, hint: str | None = None, code: int = USAGE_ERROR) -> NoReturn:
    """Print an error (and what to do about it) to stderr and exit, without a traceback."""
    err = _console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    if hint:
        err.print(hint, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"maru {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """maru: build LLM applications and train PyTorch models at scale."""


# =============================================================================== maru demo
@dataclass(frozen=True)
class DemoSection:
    """One part of ``maru demo``. ``run`` prints to the console it is given and raises on failure.
    Later subsystems (retrieval, training …) add their section to :data:`DEMO_SECTIONS`."""

    title: str
    summary: str
    run: Callable[[Console], None]


def find_examples_dir() -> Path | None:
    """The ``examples/`` folder of a source checkout: ``$MARU_EXAMPLES_DIR``, else next to ``src/``,
    else under the current directory."""
    candidates = []
    if os.environ.get("MARU_EXAMPLES_DIR"):
        candidates.append(Path(os.environ["MARU_EXAMPLES_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2] / "examples")
    candidates.append(Path.cwd() / "examples")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are programs, not part of the package)."""
    folder = find_examples_dir()
    path = folder / f"{name}.py" if folder else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"examples/{name}.py not found: the demo runs the programs in examples/ of a source "
            "checkout; run it from the repository or set MARU_EXAMPLES_DIR to that folder"
        )
    module_name = f"_maru_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


SCRIPTED_NOTICE = """\
Every chat model call in this demo is answered by [bold]ScriptedChatModel[/]: a
scripted test double that plays back canned replies. It is [bold]not a real LLM[/];
it keeps the demo offline and repeatable.

To talk to a real model, configure an endpoint and run [bold]maru chat[/]:
  export OPENAI_API_KEY=sk-...   then   maru chat --model gpt-4o-mini
  a local server (Ollama, vLLM, llama.cpp):
    maru chat --base-url http://localhost:11434/v1 --model llama3.2
(`maru chat` with nothing configured lists the options, Gemini included.)"""


def _demo_chat_chain(console: Console) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    guide = load_example("chat_travel_guide")
    model = guide.scripted_model()
    name = type(model).__name__
    console.print(f"[dim]model:[/] {name} [yellow](scripted test double, not a real LLM)[/]")

    # 1. Messages straight to the model.
    messages = guide.conversation()
    for message in messages:
        console.print(f"[bold cyan]{message.type:>6}[/] {escape(message.text)}", soft_wrap=True)
    reply = model.invoke(messages)
    console.print(f"[bold green]{'ai':>6}[/] {escape(reply.text)}  [dim](scripted)[/]", soft_wrap=True)

    # 2. The same model inside prompt | model | parser, streamed.
    chain = guide.build_chain(model)
    inputs = guide.EXAMPLE_INPUTS[0]
    console.print()
    console.print(f"[bold]chain:[/] ChatPromptTemplate | {name} | StrOutputParser")
    console.print(f"[dim]input:[/] {escape(json.dumps(inputs, ensure_ascii=False))}", soft_wrap=True)
    pieces = list(chain.stream(inputs))
    console.print(
        Panel(
            Text("".join(pieces)),
            title=f"streamed in {len(pieces)} chunks",
            subtitle="scripted reply, not a real LLM",
            expand=False,
        )
    )


def _demo_composition(console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    tour = load_example("composition_tour")
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("primitive", style="cyan", no_wrap=True)
    table.add_column("what it did")
    for primitive, outcome in tour.run_tour():
        table.add_row(Text(primitive), Text(outcome))
    console.print(table)


def _demo_cost_cache_trace(console: Console) -> None:
    import tempfile

    from .tracing.render import trace_tree

    example = load_example("cost_cache_trace")
    with tempfile.TemporaryDirectory() as tmp:
        result = example.run_demo(Path(tmp))
    usage, budget = result["usage"], result["budget"]
    console.print(
        f"{len(result['answers'])} answers and one stream: {usage.requests} requests reached the model, "
        f"{usage.cache_hits} were served by the SQLite cache (free); budget charged "
        f"{budget.requests} of 10 requests, ${budget.spent_cost:.6f} of $0.10"
    )
    console.print(usage)  # the tracker renders as its usage table
    console.print(f"{len(result['traces'])} traces recorded; the first one:")
    console.print(trace_tree(result["last_trace"]))


def _demo_rag(console: Console) -> None:
    import tempfile

    from rich.markup import escape

    example = load_example("rag_ask_docs")
    with tempfile.TemporaryDirectory() as tmp:
        result = example.run_demo(Path(tmp) / "kb")
    first, second = result["first"], result["second"]
    console.print(
        f"ingested {first.files_seen} files of the project's docs → {first.chunks} chunks in "
        f"{result['first_s']:.1f} s; a second ingest found {second.files_unchanged} unchanged files and "
        f"embedded nothing ({result['second_s']:.2f} s)"
    )
    for answer in result["answers"]:
        console.print(f"[bold]Q:[/] {answer.question}")
        console.print(f"[bold]A[/] [dim](extractive, no model)[/]: {escape(answer.text)}", soft_wrap=True)
        cited = ", ".join(f"\\[{c.n}] {escape(Path(c.source).name)}" for c in answer.citations)
        console.print(f"[dim]   sources: {cited}[/]", soft_wrap=True)


def _demo_train(console: Console) -> None:
    import subprocess
    import tempfile

    folder = find_examples_dir()
    script = folder / "train" / "linear_regression.py" if folder else None
    if script is None or not script.is_file():
        raise FileNotFoundError("examples/train/linear_regression.py not found: run the demo from the repository")
    from .train.loggers import read_metrics
    from .train.plot import plot_run

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   str(script), "--strategy", "ddp", "--steps", "200", "--run-dir", tmp, "--no-progress"]
        console.print("[dim]$ torchrun --standalone --nproc-per-node 2 examples/train/linear_regression.py "
                      "--strategy ddp --steps 200[/]")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"the DDP run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        learned = [line for line in proc.stdout.splitlines() if line.startswith("learned:")]
        console.print(f"2 processes (gloo), 200 steps: {learned[-1] if learned else proc.stdout[-200:]}")
        losses = read_metrics(tmp).get("loss", [])
        if losses:
            console.print(f"loss {losses[0][1]:.4f} at step {losses[0][0]} → {losses[-1][1]:.4f} at step {losses[-1][0]}"
                          f" (metrics.csv; `maru train plot RUN_DIR` draws it: {plot_run(tmp).name} written)")


DEMO_SECTIONS: list[DemoSection] = [
    DemoSection(
        "Chat: messages, a prompt template, a model and a parser",
        "examples/chat_travel_guide.py, offline",
        _demo_chat_chain,
    ),
    DemoSection(
        "Composition: every primitive of the runtime in one chain",
        "examples/composition_tour.py",
        _demo_composition,
    ),
    DemoSection(
        "Cost, budget, cache and traces around one chain",
        "examples/cost_cache_trace.py",
        _demo_cost_cache_trace,
    ),
    DemoSection(
        "RAG: ingest the project's docs, answer with citations, offline",
        "examples/rag_ask_docs.py; same code as `maru ingest` / `maru ask`",
        _demo_rag,
    ),
    DemoSection(
        "Training: a 2-process DDP run under torchrun",
        "examples/train/linear_regression.py with the maru Trainer, gloo on CPU",
        _demo_train,
    ),
]


@app.command()
def demo(
    section: Annotated[
        list[int] | None,
        typer.Option("--section", "-s", help="Run only these sections (1-based); repeatable."),
    ] = None,
) -> None:
    """Run the offline tour of maru: no network, no API key."""
    from rich.panel import Panel
    from rich.rule import Rule

    console = _console()
    chosen = list(enumerate(DEMO_SECTIONS, 1))
    if section:
        unknown = [s for s in section if not 1 <= s <= len(DEMO_SECTIONS)]
        if unknown:
            _fail(f"no demo section {unknown[0]}; there are {len(DEMO_SECTIONS)}")
        chosen = [(i, s) for i, s in chosen if i in section]

    console.print(Panel(SCRIPTED_NOTICE, title=f"maru {__version__} demo (offline)", expand=False))
    failed: list[str] = []
    for number, part in chosen:
        console.print()
        console.print(Rule(f"[bold]{number}. {part.title}[/]", align="left"))
        console.print(f"[dim]{part.summary}[/]")
        try:
            part.run(console)
        except Exception as exc:  # one broken section must not hide the others
            failed.append(part.title)
            console.print(f"[bold red]section failed:[/] {type(exc).__name__}: {exc}", soft_wrap=True)
    console.print()
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(chosen)} demo section(s) failed.[/]")
        raise typer.Exit(1)
    console.print(
        f"[bold green]Demo complete:[/] {len(chosen)} section(s), all offline with the scripted test "
        "double. Next: [bold]maru chat[/] with a real model, or [bold]maru run module:object[/] on your own chain."
    )


# =============================================================================== maru chat
CHAT_SETUP_HELP = """\
maru chat talks to any OpenAI-compatible chat endpoint. Configure one with environment variables
or flags (flags win):

  OPENAI_API_KEY   API key                         (needed unless --base-url points at a local server)
  OPENAI_BASE_URL  endpoint, or --base-url URL     (default: https://api.openai.com/v1)
  MARU_MODEL       model name, or --model NAME

Examples:
  OpenAI              export OPENAI_API_KEY=sk-...
                      maru chat --model gpt-4o-mini
  Gemini              export OPENAI_API_KEY=<your Gemini API key>
                      export OPENAI_BASE_URL=https://generativelanguage.googleapis.com/v1beta/openai/
                      maru chat --model gemini-2.0-flash
  Ollama (local)      maru chat --base-url http://localhost:11434/v1 --model llama3.2
  vLLM (local)        maru chat --base-url http://localhost:8000/v1 --model <served model name>
  llama.cpp server    maru chat --base-url http://localhost:8080/v1 --model local   (any name)
"""

CHAT_COMMANDS_HELP = "/reset clears the conversation, /exit (or Ctrl-D) quits."


def _make_chat_model(model: str | None, base_url: str | None) -> Runnable[Any, Any]:
    from .errors import ConfigurationError

    api_key = os.environ.get("OPENAI_API_KEY") or None
    if not api_key and not base_url:
        _fail("no chat model is configured: OPENAI_API_KEY and OPENAI_BASE_URL are not set.", CHAT_SETUP_HELP)
    try:
        from .models import OpenAIChat

        return OpenAIChat(model=model, base_url=base_url, api_key=api_key)
    except ConfigurationError as exc:
        _fail(str(exc), CHAT_SETUP_HELP)
    except ImportError as exc:
        _fail(
            f"the OpenAI-compatible provider could not be loaded ({exc}).",
            'Install it with:  pip install "maru[openai]"',
        )


def _chat_repl(
    chat_model: Runnable[Any, Any], system: str | None, store: Any = None, session: str | None = None
) -> None:
    """The chat loop. With a history ``store`` and ``session``, earlier turns are loaded first and
    every completed turn is appended, so the conversation resumes on the next run."""
    from .errors import ConfigurationError
    from .messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

    console = _console()
    label = getattr(chat_model, "model_name", None) or chat_model.name
    console.print(f"[bold]maru chat[/] with [cyan]{label}[/]. {CHAT_COMMANDS_HELP}", soft_wrap=True)
    history: list[BaseMessage] = [SystemMessage(system)] if system else []
    if store is not None and session:
        past = [m for m in store.get(session) if not isinstance(m, SystemMessage)]
        history.extend(past)
        if past:
            console.print(f"[dim]session {session}: resumed {len(past)} earlier messages[/]")
    while True:
        try:
            line = console.input("[bold green]you ›[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            del history[int(bool(system)) :]
            if store is not None and session:
                store.clear(session)
            console.print("[dim]conversation cleared[/]")
            continue
        if text == "/help":
            console.print(CHAT_COMMANDS_HELP)
            continue

        history.append(HumanMessage(text))
        reply: Any = None
        console.print("[bold blue]ai ›[/] ", end="")
        try:
            for chunk in chat_model.stream(history):
                reply = chunk if reply is None else reply + chunk
                _write(chunk.text if isinstance(chunk, BaseMessage) else str(chunk))
        except KeyboardInterrupt:
            console.print("\n[dim](interrupted)[/]")
        except ConfigurationError as exc:
            console.print()
            _fail(str(exc), CHAT_SETUP_HELP)
        except Exception as exc:  # network and provider errors: report, forget the turn, go on
            console.print()
            console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", soft_wrap=True)
            history.pop()
            continue
        _write("\n")
        if reply is None:
            history.pop()
            continue
        if isinstance(reply, AIMessageChunk):
            reply = reply.to_message()
        history.append(reply)
        if store is not None and session:
            store.append(session, history[-2:])


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command()
def chat(
    model: Annotated[
        str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Model name.", show_envvar=True)
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.", show_envvar=True),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt for the conversation.")] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Keep this conversation under a session id; it resumes on the next run."),
    ] = None,
    history_db: Annotated[
        str,
        typer.Option("--history", envvar="MARU_HISTORY", help="Where sessions are kept: a SQLite path or a SQLAlchemy/redis URL.", show_envvar=True),
    ] = ".maru/history.sqlite",
) -> None:
    """Chat with a real model (OpenAI, Gemini, Ollama, vLLM, llama.cpp …), streaming its replies.

    The key comes from OPENAI_API_KEY; it is never taken on the command line.
    """
    chat_model = _make_chat_model(model or None, base_url or None)
    store = None
    if session:
        from .history import history_store

        if "://" not in history_db:
            Path(history_db).parent.mkdir(parents=True, exist_ok=True)
        store = history_store(history_db)
    _chat_repl(chat_model, system, store, session)


# =============================================================================== maru ingest / ask
STORE_HELP = "The knowledge-base folder (vectors, records, BM25 index)."


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index (txt, md, html, pdf, csv, jsonl …).")],
    store: Annotated[Path, typer.Option("--store", envvar="MARU_STORE", help=STORE_HELP, show_envvar=True)] = Path(".maru/kb"),
    glob: Annotated[str, typer.Option("--glob", help="Which files of a folder to take.")] = "**/*",
) -> None:
    """Index documents for `maru ask`. Re-running skips unchanged files and removes deleted ones."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .errors import LoaderError
    from .rag.knowledge import KnowledgeBase

    console = _console()
    kb = KnowledgeBase(store)
    labels = {"scan": "scanning files", "embed": "embedding chunks", "bm25": "building BM25 index"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            report = kb.ingest([str(p) for p in paths], glob=glob, progress=progress)
        except LoaderError as exc:
            _fail(str(exc))
        finally:
            kb.close()
    result = report.result
    console.print(
        f"{report.files_seen} files: {len(report.sources)} indexed, {report.files_unchanged} unchanged, "
        f"{report.files_removed} removed; {report.chunks} chunks"
        + (f" (added {result.added}, updated {result.updated}, skipped {result.skipped}, deleted {result.deleted})" if result else "")
        + f" → {store}"
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in any language.")],
    store: Annotated[Path, typer.Option("--store", envvar="MARU_STORE", help=STORE_HELP, show_envvar=True)] = Path(".maru/kb"),
    k: Annotated[int, typer.Option("--k", "-k", help="How many passages to retrieve.")] = 4,
    extractive: Annotated[bool, typer.Option("--extractive", help="Answer with quoted sentences even when a model is configured.")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Model name.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")] = None,
) -> None:
    """Answer a question from the documents `maru ingest` indexed, citing its sources.

    With a chat model configured (OPENAI_API_KEY or OPENAI_BASE_URL) the model writes the answer;
    without one, the answer is the best sentences of the top passages, each cited.
    """
    from rich.markup import escape

    from .errors import LoaderError
    from .rag.knowledge import KnowledgeBase

    console = _console()
    if not (store / "vectors").exists():
        _fail(f"no knowledge base at {store}", f"Index documents first:  maru ingest PATH --store {store}")
    chat_model = None
    if not extractive and (os.environ.get("OPENAI_API_KEY") or base_url):
        chat_model = _make_chat_model(model or None, base_url or None)
    kb = KnowledgeBase(store)
    try:
        answer = kb.ask(question, k=k, model=chat_model)
    except LoaderError as exc:
        _fail(str(exc))
    finally:
        kb.close()
    mode = "answer" if answer.mode == "llm" else "answer (extractive: quoted from the sources, no model configured)"
    console.print(f"[bold]{mode}:[/] {escape(answer.text)}", soft_wrap=True)
    console.print("[bold]sources:[/]")
    for c in answer.citations:
        score = f" ({c.score:.3f})" if c.score is not None else ""
        console.print(f"  \\[{c.n}] {escape(c.source)}{score}", soft_wrap=True, highlight=False)


# =============================================================================== maru sql
@app.command("sql")
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

    from .errors import ConfigurationError, SQLExecutionError, UnsafeSQLError
    from .sql import SQLDatabase, SQLQueryChain

    if not db:
        _fail("no database given", "Pass --db URL (e.g. --db sqlite:///chinook.db) or set MARU_SQL_DB.")
    console = _console()
    database = SQLDatabase(db, max_rows=max_rows)
    try:
        if schema:
            console.print(Syntax(database.describe(database.relevant_tables(question, 8) if question else None), "sql", word_wrap=True))
            return
        if query:
            result = database.run(query)
            console.print(Syntax(result.sql, "sql", word_wrap=True))
            console.print(_rows_table(result))
            return
        if not question:
            _fail("nothing to do", "Give a question, or --query SQL, or --schema.")
        chain = SQLQueryChain(_make_chat_model(model or None, base_url or None), database)  # type: ignore[arg-type]
        answer = chain.invoke(question)
        console.print(Syntax(answer.sql, "sql", word_wrap=True))
        if answer.repaired:
            console.print("[dim](the first query failed; this is the repaired one)[/]")
        console.print(_rows_table(answer.result))
        console.print(f"[bold]answer:[/] {answer.answer}")
    except UnsafeSQLError as exc:
        _fail(f"refused: {exc}")
    except (SQLExecutionError, ConfigurationError) as exc:
        _fail(str(exc))
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


# =============================================================================== maru run
def load_target(target: str) -> Runnable[Any, Any]:
    """Resolve ``module:object`` (``object`` may be dotted) into a runnable; exits 2 when it cannot."""
    from .core import Runnable, coerce

    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        _fail(
            f"bad target {target!r}: expected module:object",
            "e.g.  maru run my_app.chains:summarise --input '\"some text\"'",
        )
    # Like `python -m`, let a module in the current directory be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            _fail(
                f"cannot import module {module_name!r} (from target {target!r}): {exc}",
                "Check the module path; it must be importable from the current directory or the installed packages.",
            )
        _fail(f"importing {module_name!r} failed: {exc}")
    except Exception as exc:
        _fail(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}")

    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            _fail(
                f"module {module_name!r} has no attribute {attr_path!r}",
                f"It defines: {', '.join(public[:30]) or '(nothing public)'}",
            )
    if isinstance(obj, type) and issubclass(obj, Runnable):
        _fail(f"{target!r} is the class {obj.__name__}; point at an instance of it (a chain, a model …)")
    if isinstance(obj, Runnable):
        return obj
    if callable(obj):
        return coerce(obj)
    _fail(f"{target!r} is of type {type(obj).__name__}, not a runnable or a callable")


def parse_input(raw: str) -> Any:
    """Parse ``--input``: JSON text, ``@path`` to read a JSON file, or ``-`` to read JSON from stdin."""
    source = "--input"
    if raw == "-":
        raw, source = sys.stdin.read(), "stdin"
    elif raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            _fail(f"cannot read input file {str(path)!r}: {exc.strerror or exc}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "Quote it for the shell; a string needs JSON quotes too, e.g. --input '\"hello\"' "
            "or --input '{\"question\": \"hi\"}'.",
        )


def to_jsonable(value: Any) -> Any:
    """``json.dumps`` default: messages via ``to_dict()``, pydantic models, dataclasses, sets."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_result(value: Any, *, raw: bool = False, indent: int | None = 2) -> str:
    """JSON when the value can be made JSON, else its ``str``. With ``raw`` a string prints as is."""
    if raw and isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=to_jsonable, ensure_ascii=False, indent=indent)
    except (TypeError, ValueError):
        return str(value)


def _stream_output(chunks: Iterator[Any], raw: bool) -> None:
    """Text chunks (strings, message chunks) are written as they arrive; anything else is printed
    as one JSON value per line."""
    from .messages import BaseMessage

    def text_of(chunk: Any) -> str | None:
        if isinstance(chunk, str):
            return chunk
        if (
            isinstance(chunk, BaseMessage)
            and isinstance(chunk.content, str)
            and not getattr(chunk, "tool_call_chunks", None)
        ):
            return chunk.content
        return None

    in_text = False
    for chunk in chunks:
        text = text_of(chunk)
        if text is not None:
            _write(text)
            in_text = True
            continue
        if in_text:
            _write("\n")
            in_text = False
        _write(format_result(chunk, raw=raw, indent=None) + "\n")
    if in_text:
        _write("\n")


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="What to run, as module:object (a runnable or a function).")],
    input: Annotated[
        str,
        typer.Option("--input", "-i", help="The input as JSON; @file.json reads a file, - reads stdin."),
    ],
    stream: Annotated[bool, typer.Option("--stream", help="Stream the output as it is produced.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print a string result without JSON quotes.")] = False,
) -> None:
    """Invoke a runnable (or a plain function) on a JSON input and print the result as JSON."""
    from .errors import ConfigurationError

    step = load_target(target)
    value = parse_input(input)
    try:
        if stream:
            _stream_output(step.stream(value), raw)
        else:
            typer.echo(format_result(step.invoke(value), raw=raw))
    except ConfigurationError as exc:
        _fail(str(exc))


# =============================================================================== maru usage
@app.command()
def usage(
    report: Annotated[Path, typer.Argument(help="A usage report saved with UsageTracker.save(path).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
) -> None:
    """Print the usage report of a tracked run: tokens, cache hits and cost per model, and totals.

    Save one with:  with maru.usage.track() as t: ...;  t.save("usage.json")
    """
    from .usage.tracker import UsageTracker

    hint = 'A report is written by a tracker:  with maru.usage.track() as t: ...  then  t.save("usage.json")'
    try:
        tracker = UsageTracker.load(report)
    except FileNotFoundError:
        _fail(f"usage report {str(report)!r} not found.", hint)
    except IsADirectoryError:
        _fail(f"{str(report)!r} is a folder, not a usage report.", hint)
    except UnicodeDecodeError:
        _fail(f"{str(report)!r} is not a usage report (not UTF-8 text).", hint)
    except ValueError as exc:
        _fail(f"not a usage report: {exc}", hint)
    except OSError as exc:
        _fail(f"cannot read {str(report)!r}: {exc.strerror or exc}")
    if as_json:
        typer.echo(tracker.to_json())
        return
    _console().print(tracker.table(title=f"Usage: {tracker.name or report.name}"))


# =============================================================================== maru serve
@app.command("serve")
def serve_command(
    target: Annotated[str, typer.Argument(help="What to serve, as module:object (a runnable or a function).")],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port (0: any free one).")] = 8000,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body accepted; larger ones get 413.")
    ] = 1_000_000,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            "--graceful-timeout",
            min=0,
            help="On SIGTERM/Ctrl-C, seconds to let requests and streams in flight finish.",
        ),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    kwarg: Annotated[
        list[str] | None,
        typer.Option(
            "--kwarg",
            metavar="NAME",
            help="Let requests pass this keyword argument to the call in their \"kwargs\" (repeatable). "
            "None is allowed by default.",
        ),
    ] = None,
) -> None:
    """Serve a runnable over HTTP: POST /invoke, /batch, /stream, /stream_events (server-sent
    events); GET /health; the OpenAPI document at /openapi.json and /docs."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        _fail(f"serving needs FastAPI and uvicorn ({exc}).", 'Install them with:  pip install "maru[serve]"')
    from .serve import serve as run_server
    from .serve.app import check_allowed_kwargs

    try:
        allowed = check_allowed_kwargs(kwarg or ())
    except ValueError as exc:
        _fail(f"--kwarg: {exc}")
    step = load_target(target)
    run_server(
        step,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        allowed_kwargs=allowed,
        timeout_graceful_shutdown=graceful_timeout,
        log_level=log_level,
    )


# =============================================================================== maru trace
trace_app = typer.Typer(
    name="trace",
    help="Browse recorded traces: list them, show one as a tree, or open the web viewer.",
    no_args_is_help=True,
)
app.add_typer(trace_app, name="trace")

from .launch.cli import jobs_app  # noqa: E402 - typer and the standard library only
from .launch.cli import launch as launch_command  # noqa: E402
from .train.cli import train_app  # noqa: E402

app.command("launch")(launch_command)
app.add_typer(jobs_app, name="jobs")
app.add_typer(train_app, name="train")

TRACE_DB_HELP = "The trace store (the file maru.tracing.enable() writes; default .maru/traces.sqlite)."
TraceDb = Annotated[
    Path | None, typer.Option("--db", envvar="MARU_TRACE_DB", show_envvar=True, help=TRACE_DB_HELP)
]


def _open_trace_store(db: Path | None) -> RunStore:
    """Open an existing trace store for reading; a missing or unusable one exits 2 with why."""
    from .errors import TraceStoreError
    from .tracing.store import DEFAULT_PATH, RunStore

    try:
        return RunStore(db or DEFAULT_PATH, create=False)
    except TraceStoreError as exc:
        _fail(str(exc))


def _time_option(value: str | None, option: str) -> float | None:
    from .tracing.store import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        _fail(f"{option}: {exc}")


@trace_app.command("ls")
def trace_ls(
    db: TraceDb = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only traces whose name contains this.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only traces with a run carrying this tag.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Started at or after: 30m, 1h, 2d, an ISO date-time or epoch seconds.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Started before (same forms as --since).")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only traces in which some run failed.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="How many traces to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (newest first).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the root runs as JSON lines.")] = False,
) -> None:
    """List recorded traces, newest first: started, name, latency, tokens, cost, status, trace id."""
    from .errors import TraceStoreError
    from .tracing.render import traces_table

    store = _open_trace_store(db)
    filters: dict[str, Any] = {
        "name": name or None,
        "tag": tag or None,
        "since": _time_option(since, "--since"),
        "until": _time_option(until, "--until"),
        "errors_only": errors,
    }
    try:
        roots = store.list_traces(**filters, limit=limit, offset=offset)
        total = store.count_traces(**filters) if roots or offset else 0
        stats = store.trace_stats(r.trace_id for r in roots)
    except TraceStoreError as exc:
        _fail(str(exc))
    if as_json:
        for root in roots:
            typer.echo(json.dumps(root.to_dict(), ensure_ascii=False, default=str))
        return
    console = _console()
    if not roots:
        filtered = any(v for v in filters.values())
        console.print(f"No traces{' match' if filtered else ' yet'} in {store.path}.", markup=False)
        return
    shown = f"{offset + 1}–{offset + len(roots)} of {total}" if offset else f"{len(roots)} of {total}"
    caption = f"{shown} traces in {store.path}"
    console.print(traces_table(roots, stats, caption=caption))


@trace_app.command("show")
def trace_show(
    trace_id: Annotated[str, typer.Argument(help="A trace id, or a prefix of one that only it starts with.")],
    db: TraceDb = None,
    width: Annotated[int, typer.Option("--width", min=10, help="Characters of input/output preview per run.")] = 80,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace's runs as JSON.")] = False,
) -> None:
    """Show one trace as a tree of its runs: kind, latency, tokens and cost, inputs and outputs,
    errors in red."""
    from rich.text import Text

    from .errors import TraceStoreError
    from .tracing.render import format_latency, format_time, trace_tree

    store = _open_trace_store(db)
    try:
        matches = store.match_trace_ids(trace_id, limit=6)
        if not matches:
            _fail(f"no trace {trace_id!r} in {store.path}.", "maru trace ls lists the traces there.")
        if len(matches) > 1:
            listed = ", ".join(matches[:5]) + (" …" if len(matches) > 5 else "")
            _fail(f"{trace_id!r} is the start of several trace ids: {listed}", "Give more of the id.")
        runs = store.get_trace(matches[0])
    except TraceStoreError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], ensure_ascii=False, indent=2, default=str))
        return
    console = _console()
    roots = [r for r in runs if r.parent_id is None]
    failed = sum(1 for r in runs if r.error)
    header = Text(f"trace {matches[0]}", style="bold")
    if roots:
        header.append(f" · started {format_time(roots[0].start_time)} · {format_latency(roots[0].latency)}")
    header.append(f" · {len(runs)} run{'s' if len(runs) != 1 else ''}")
    if failed:
        header.append(f" · {failed} failed", style="red")
    console.print(header)
    console.print(trace_tree(runs, width=width))


@trace_app.command("ui")
def trace_ui(
    db: TraceDb = None,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on. Traces hold prompts and outputs: keep it local.")
    ] = "127.0.0.1",
) -> None:
    """Open the web viewer of a trace store: traces with latency, tokens and cost, filters by name,
    tag and time, each trace's run tree with inputs, outputs and errors."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        _fail(f"the trace viewer needs FastAPI and uvicorn ({exc}).", 'Install them with:  pip install "maru[trace]"')
    from .tracing.viewer import create_viewer_app

    store = _open_trace_store(db)
    viewer = create_viewer_app(store)
    console = _console()
    shown_host = f"[{host}]" if ":" in host else host
    console.print(f"maru trace viewer for {store.path}: http://{shown_host}:{port}/  (Ctrl-C stops it)", markup=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach it can read these traces.",
            soft_wrap=True,
        )
    uvicorn.run(viewer, host=host, port=port, log_level="warning")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
