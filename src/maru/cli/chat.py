"""``maru chat``: a streaming chat REPL against any OpenAI-compatible endpoint, and the chat model
the other commands (``ask``, ``sql``) build from the same flags and environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._home import maru_home
from ._errors import describe_error, is_connection_error
from ._extras import needs_extra, require_module
from ._shared import fail, make_console, write

if TYPE_CHECKING:
    from rich.console import Console

    from ..core import Runnable
    from ..messages import BaseMessage
    from ..models.base import ChatModel

CHAT_SETUP_HELP = """\
With nothing configured, maru chat runs the bundled SmolLM2-135M-Instruct in process (offline, no
key; MARU_LOCAL_MODEL or --model FILE.gguf names another GGUF file). It also talks to any
OpenAI-compatible chat endpoint, configured with environment variables or flags (flags win):

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
        str | None,
        typer.Option(
            "--history",
            envvar="MARU_HISTORY",
            help="Where sessions are kept: a SQLite path or a SQLAlchemy/redis URL "
            "(default: history.sqlite in $MARU_HOME, else in the project's .maru folder).",
            show_envvar=True,
        ),
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools",
            help="module:object naming a list of tools: chat with an agent that can call them "
            "(with --session its thread is kept in threads.sqlite in maru's home).",
        ),
    ] = None,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            help="A tool (of --tools) that waits for your decision before it runs: approve, edit "
            "its arguments, or reject it with a message for the model. Repeat for more.",
        ),
    ] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Model turns per question (with --tools).")] = 10,
) -> None:
    """Chat with a model, streaming its replies: the bundled local model with nothing configured,
    or any OpenAI-compatible endpoint (OpenAI, Gemini, Ollama, vLLM, llama.cpp …).

    The key comes from OPENAI_API_KEY; it is never taken on the command line.
    """
    from .agent_chat import agent_chat, load_tools

    if approve and not tools:
        fail("--approve names tools of an agent, and no agent was asked for", "Give its tools: --tools module:object.")
    tool_list = load_tools(tools) if tools else None  # before the model loads: a wrong target fails fast
    store = open_history(history_db or str(maru_home() / "history.sqlite"), session) if session and not tools else None
    chat_model = make_chat_model(model or None, base_url or None)
    if tool_list is not None:
        agent_chat(chat_model, tool_list, approve or (), system, session, max_steps)
        return
    chat_repl(chat_model, system, store, session)


def open_history(spec: str, session: str) -> Any:
    """The history store ``--history`` names, read once (the session) so that a server that is
    down is reported now, as one message, instead of at the first reply."""
    from ..history import history_store

    if "://" not in spec:
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
    store = history_store(spec)
    try:
        store.get(session)
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        fail(
            f"cannot reach the history store (--history): {describe_error(exc)}",
            "Start that server, or keep sessions in a SQLite file: --history PATH.sqlite "
            "(the default when --history and MARU_HISTORY are not set).",
        )
    return store


def make_chat_model(model: str | None, base_url: str | None) -> ChatModel:
    """The chat model the flags and the environment name: an OpenAI-compatible endpoint when one
    is configured, else the bundled local model in process. Says which on stderr; exits 2 saying
    what to set (or to install) when none can be built."""
    from ..errors import ConfigurationError
    from ..models.default import default_chat_model, describe_model, endpoint_configured

    remote = endpoint_configured(base_url)
    if base_url:
        check_endpoint_url(base_url)
    with needs_extra("openai" if remote else "local", "a chat model"):
        require_module("openai" if remote else "llama_cpp")  # imported on the first call
        try:
            chat_model = default_chat_model(model, base_url)
        except ConfigurationError as exc:
            fail(str(exc), CHAT_SETUP_HELP)
    from rich.markup import escape

    make_console(stderr=True).print(f"[dim]model: {escape(describe_model(chat_model))}[/]")
    return chat_model


def check_endpoint_url(url: str) -> None:
    """Exit 2 naming ``url`` when it is not an http(s) URL with a host: the SDK would only say
    "Connection error." at the first message."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        fail(
            f"--base-url {url!r} is not an http(s) URL (it may come from OPENAI_BASE_URL)",
            "An OpenAI-compatible endpoint looks like http://localhost:11434/v1 (Ollama) or "
            "https://api.openai.com/v1.",
        )


def chat_repl(
    chat_model: Runnable[Any, Any], system: str | None, store: Any = None, session: str | None = None
) -> None:
    """The chat loop. With a history ``store`` and ``session``, earlier turns are loaded first and
    every completed turn is appended, so the conversation resumes on the next run."""
    from ..messages import HumanMessage

    console = make_console()
    label = getattr(chat_model, "model_name", None) or chat_model.name
    console.print(f"[bold]maru chat[/] with [cyan]{label}[/]. {CHAT_COMMANDS_HELP}", soft_wrap=True)
    history = _start_history(system, store, session, console)
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
        reply = _stream_reply(chat_model, history, console)
        if reply is None:  # failed, or nothing came back: forget the turn
            history.pop()
            continue
        history.append(reply)
        if store is not None and session:
            store.append(session, history[-2:])


def _start_history(system: str | None, store: Any, session: str | None, console: Console) -> list[BaseMessage]:
    """The system prompt, then the session's earlier turns (without their own system prompt)."""
    from ..messages import SystemMessage

    history: list[BaseMessage] = [SystemMessage(system)] if system else []
    if store is not None and session:
        past = [m for m in store.get(session) if not isinstance(m, SystemMessage)]
        history.extend(past)
        if past:
            console.print(f"[dim]session {session}: resumed {len(past)} earlier messages[/]")
    return history


def _stream_reply(chat_model: Runnable[Any, Any], history: list[BaseMessage], console: Console) -> Any:
    """Write the model's reply to stdout as it streams; return it gathered, or ``None`` when the
    turn failed. Ctrl-C stops the reply and keeps what came; a network or provider error is
    reported and the REPL goes on; a configuration error ends it."""
    from rich.markup import escape

    from ..errors import ConfigurationError
    from ..messages import AIMessageChunk, BaseMessage

    reply: Any = None
    console.print("[bold blue]ai ›[/] ", end="")
    try:
        for chunk in chat_model.stream(history):
            reply = chunk if reply is None else reply + chunk
            write(chunk.text if isinstance(chunk, BaseMessage) else str(chunk))
    except KeyboardInterrupt:
        console.print("\n[dim](interrupted)[/]")
    except ConfigurationError as exc:
        console.print()
        fail(str(exc), CHAT_SETUP_HELP)
    except Exception as exc:  # network and provider errors: report, forget the turn, go on
        console.print()
        console.print(f"[bold red]error:[/] {escape(_turn_error(chat_model, exc))}", soft_wrap=True)
        return None
    write("\n")
    return reply.to_message() if isinstance(reply, AIMessageChunk) else reply


def _turn_error(chat_model: Runnable[Any, Any], exc: Exception) -> str:
    """What failed in a turn; a connection failure names the endpoint it could not reach."""
    from ..models.default import describe_model

    if is_connection_error(exc):
        return f"no answer from {describe_model(chat_model)}: {describe_error(exc)}"
    return f"{type(exc).__name__}: {exc}"
