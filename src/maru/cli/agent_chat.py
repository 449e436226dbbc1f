"""``maru chat --tools module:object``: the chat REPL with a tool-calling agent, which asks on the
terminal before it runs a tool named by ``--approve`` (approve, edit the arguments as JSON, or
reject with a message the model is told)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._shared import fail

if TYPE_CHECKING:
    from rich.console import Console

    from ..agents import AgentResult, ToolCallingAgent
    from ..core import RunConfig

AGENT_COMMANDS_HELP = "/reset starts a new conversation, /exit (or Ctrl-D) quits."
_DEFAULT_REJECTION = "The user rejected this call."


def load_tools(target: str) -> list[Any]:
    """The tools ``module:object`` names: a list of tools (or functions), or one."""
    from ..serve.target import load_object

    found = load_object(target)
    tools = list(found) if isinstance(found, list | tuple) else [found]
    if not tools or not all(callable(t) or hasattr(t, "invoke") for t in tools):
        fail(
            f"--tools {target} is {type(found).__name__}, not tools",
            "Name a list of tools: functions decorated with maru.agents.tool (or LangChain tools).",
        )
    return tools


def agent_chat(
    chat_model: Any, tools: Sequence[Any], approve: Iterable[str], system: str | None,
    session: str | None, max_steps: int,
) -> None:
    """Build the agent (its thread kept in memory, or under ``--session`` in maru's home) and run
    the REPL."""
    from .._home import maru_home
    from ..agents import ToolCallingAgent
    from ..graph import InMemorySaver, SQLiteSaver

    saver = SQLiteSaver(maru_home() / "threads.sqlite") if session else InMemorySaver()
    agent = ToolCallingAgent(chat_model, tools, system=system, approve=approve, checkpointer=saver, max_steps=max_steps)
    agent_repl(agent, session or "chat")


def agent_repl(agent: ToolCallingAgent, thread_id: str) -> None:
    from ._shared import make_console

    console = make_console()
    names = ", ".join(agent.tools)
    asks = f"; asks before {', '.join(sorted(agent.approve))}" if agent.approve else ""
    console.print(f"[bold]maru chat[/] with tools ({names}{asks}). {AGENT_COMMANDS_HELP}", soft_wrap=True)
    thread: RunConfig = {"configurable": {"thread_id": thread_id}}
    said = agent.graph.get_state(thread)
    if said is not None and said.values.get("messages"):
        console.print(f"[dim]session {thread_id}: resumed {len(said.values['messages'])} earlier messages[/]")
    while True:
        try:
            text = console.input("[bold green]you ›[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            _forget(agent, thread_id)
            console.print("[dim]conversation cleared[/]")
            continue
        if text == "/help":
            console.print(AGENT_COMMANDS_HELP)
            continue
        try:
            agent_turn(agent, text, thread, console)
        except EOFError:  # stdin ended while a call waited for a decision: the thread stays paused
            console.print("\n[dim](no decision: the call was not run)[/]")
            return


def agent_turn(agent: ToolCallingAgent, text: str, thread: RunConfig, console: Console) -> None:
    """One turn: run the agent, showing its tool calls and results; when it pauses, ask and go on."""
    from rich.markup import escape

    from ..errors import ConfigurationError
    from ..graph import Command
    from .chat import CHAT_SETUP_HELP, _turn_error

    value: Any = text
    while True:
        try:
            result = _show_steps(agent.stream(value, thread), console)
        except KeyboardInterrupt:
            console.print("\n[dim](interrupted)[/]")
            return
        except ConfigurationError as exc:
            fail(str(exc), CHAT_SETUP_HELP)
        except Exception as exc:  # network and provider errors: report, go on
            console.print(f"[bold red]error:[/] {escape(_turn_error(agent.model, exc))}", soft_wrap=True)
            return
        if result.stopped != "interrupted" or result.interrupt is None:
            console.print(f"[bold blue]ai ›[/] {escape(result.output)}", soft_wrap=True)
            return
        value = Command(resume=ask_approval(result.interrupt, console))


def _show_steps(items: Iterable[Any], console: Console) -> AgentResult:
    from rich.markup import escape

    from ..agents import AgentResult

    for item in items:
        if isinstance(item, AgentResult):
            return item
        if item.kind == "model":
            for call in item.message.tool_calls:
                console.print(f"[dim]→ {escape(_call_text(call.name, call.args))}[/]", soft_wrap=True)
        else:
            text = item.message.text if len(item.message.text) <= 300 else item.message.text[:300] + " …"
            console.print(f"[dim]← {escape(item.message.name or 'tool')}: {escape(text)}[/]", soft_wrap=True)
    raise RuntimeError("the agent's step stream ended without a result")


def ask_approval(request: dict[str, Any], console: Console) -> dict[str, dict[str, Any]]:
    """A decision per paused call, asked on the terminal."""
    return {call["id"]: _ask(call, console) for call in request["tool_calls"]}


def _ask(call: dict[str, Any], console: Console) -> dict[str, Any]:
    from rich.markup import escape

    console.print(
        f"[bold yellow]approve[/] {escape(_call_text(call['name'], call['args']))}? "
        "[y]es, [e]dit the arguments, [r]eject",
        soft_wrap=True,
    )
    while True:
        answer = console.input("[bold yellow]approve ›[/] ").strip().lower()
        if answer in ("y", "yes"):
            return {"action": "approve"}
        if answer in ("e", "edit"):
            args = _read_args(console)
            if args is not None:
                return {"action": "edit", "args": args}
        elif answer in ("r", "reject", "n", "no"):
            why = console.input("[bold yellow]why (the model is told) ›[/] ").strip()
            return {"action": "reject", "message": why or _DEFAULT_REJECTION}
        else:
            console.print("answer y (run it), e (edit its arguments) or r (do not run it)")


def _read_args(console: Console) -> dict[str, Any] | None:
    raw = console.input("[bold yellow]arguments (JSON) ›[/] ").strip()
    try:
        args = json.loads(raw)
    except json.JSONDecodeError as exc:
        console.print(f"not JSON ({exc.msg}); the arguments are a JSON object like {{\"path\": \"a.txt\"}}")
        return None
    if not isinstance(args, dict):
        console.print("the arguments are a JSON object, like {\"path\": \"a.txt\"}")
        return None
    return args


def _call_text(name: str, args: Any) -> str:
    return f"{name}({json.dumps(args, ensure_ascii=False)})"


def _forget(agent: ToolCallingAgent, thread_id: str) -> None:
    from ..agents.journal import JOURNAL_SUFFIX

    saver = agent.checkpointer
    if saver is not None:
        saver.delete_thread(thread_id)
        saver.delete_thread(thread_id + JOURNAL_SUFFIX)
