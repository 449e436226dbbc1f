"""``maru demo``: the offline tour. Every section runs without a network or an API key. The chat,
RAG and extraction sections answer with the bundled SmolLM2-135M-Instruct, a real model run in
process by llama.cpp; the cost/cache/trace section uses ``ScriptedChatModel``, a scripted test
double, so that its cache hits and budget figures repeat exactly. The output says which is which.

A section is a title, a one-line summary and a function that prints to the console it is given
(and raises on failure). The programs the sections run live in :mod:`maru.demo`, inside the
package, so the tour works from an installed wheel; this module only presents them. A section
that needs an optional extra which is not installed is skipped with the command that installs it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from .._version import __version__
from ._extras import install_command, is_missing_extra, require_module
from ._shared import fail, make_console

if TYPE_CHECKING:
    from rich.console import Console

Outcome = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class DemoSection:
    """One part of ``maru demo``. ``run`` prints to the console it is given and raises on failure;
    ``extra`` names the optional extra it needs, if any."""

    title: str
    summary: str
    run: Callable[[Console], None]
    extra: str | None = None


NOTICE = "\n".join([
    "The chat, RAG and extraction sections answer with [bold]SmolLM2-135M-Instruct[/], a real "
    "language model (135M parameters, bundled, run on this machine by llama.cpp). It is small: "
    "expect short, simple and sometimes wrong answers; the point is that every part runs for real, "
    "offline. The cost/cache/trace section uses [bold]ScriptedChatModel[/], a scripted test double, "
    "so that its cache hits and budget figures are the same on every run.",
    "",
    "For a larger model, point maru at any OpenAI-compatible endpoint:",
    "  export OPENAI_API_KEY=sk-...   then   maru chat --model gpt-4o-mini",
    "  a local server (Ollama, vLLM, llama.cpp):",
    "    maru chat --base-url http://localhost:11434/v1 --model llama3.2",
])


@functools.cache
def local_model() -> Any:
    """The bundled model, loaded once for every section that uses it."""
    require_module("llama_cpp")
    from ..models import LlamaCppChat

    return LlamaCppChat(max_tokens=96)


def demo(
    section: Annotated[
        list[int] | None,
        typer.Option("--section", "-s", help="Run only these sections (1-based); repeatable."),
    ] = None,
) -> None:
    """Run the offline tour of maru: no network, no API key."""
    from rich.panel import Panel

    chosen = _chosen(section)
    console = make_console()
    console.print(Panel(NOTICE, title=f"maru {__version__} demo (offline)", expand=False))
    outcomes = {part.title: _run_section(number, part, console) for number, part in chosen}
    _summarise(outcomes, console)


def _chosen(numbers: Iterable[int] | None) -> list[tuple[int, DemoSection]]:
    """The sections to run, numbered from 1; an unknown number exits 2."""
    sections = list(enumerate(DEMO_SECTIONS, 1))
    if not numbers:
        return sections
    unknown = [n for n in numbers if not 1 <= n <= len(DEMO_SECTIONS)]
    if unknown:
        fail(f"no demo section {unknown[0]}; there are {len(DEMO_SECTIONS)}")
    return [(i, s) for i, s in sections if i in numbers]


def _run_section(number: int, part: DemoSection, console: Console) -> Outcome:
    """Print the section's heading and run it; one broken section must not hide the others."""
    from rich.rule import Rule

    console.print()
    console.print(Rule(f"[bold]{number}. {part.title}[/]", align="left"))
    console.print(f"[dim]{part.summary}[/]")
    try:
        part.run(console)
    except ModuleNotFoundError as exc:
        if part.extra is None or not is_missing_extra(exc, part.extra):
            return _report_failure(exc, console)
        return _report_skip(exc, part.extra, console)
    except Exception as exc:
        return _report_failure(exc, console)
    return "done"


def _report_failure(exc: Exception, console: Console) -> Outcome:
    from rich.markup import escape

    console.print(f"[bold red]section failed:[/] {type(exc).__name__}: {escape(str(exc))}", soft_wrap=True)
    return "failed"


def _report_skip(exc: ModuleNotFoundError, extra: str, console: Console) -> Outcome:
    from rich.markup import escape

    reason = f'it needs the "{extra}" extra (no module {exc.name!r}): {install_command(extra)}'
    console.print(f"[yellow]section skipped:[/] {escape(reason)}", soft_wrap=True)
    return "skipped"


def _summarise(outcomes: dict[str, Outcome], console: Console) -> None:
    console.print()
    failed = sum(1 for o in outcomes.values() if o == "failed")
    if failed:
        console.print(f"[bold red]{failed} of {len(outcomes)} demo section(s) failed.[/]")
        raise typer.Exit(1)
    skipped = sum(1 for o in outcomes.values() if o == "skipped")
    ran = f"{len(outcomes)} section(s)" + (f", {skipped} skipped for a missing extra" if skipped else "")
    console.print(
        f"[bold green]Demo complete:[/] {ran}, all offline. Next: [bold]maru chat[/], "
        "[bold]maru ingest[/] + [bold]maru ask[/] on your documents, or [bold]maru run module:object[/] on your own chain."
    )


# ----------------------------------------------------------------------------- the sections
def _chat_chain(console: Console) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    from ..demo import travel_guide as guide
    from ..models import describe_model

    model = local_model()
    console.print(f"[dim]model:[/] {escape(describe_model(model))}")

    # 1. Messages straight to the model.
    messages = guide.conversation()
    for message in messages:
        console.print(f"[bold cyan]{message.type:>6}[/] {escape(message.text)}", soft_wrap=True)
    reply = model.invoke(messages)
    console.print(f"[bold green]{'ai':>6}[/] {escape(reply.text.strip())}", soft_wrap=True)

    # 2. The same model inside prompt | model | parser, streamed.
    chain = guide.build_chain(model)
    inputs = guide.EXAMPLE_INPUTS[0]
    console.print()
    console.print(f"[bold]chain:[/] ChatPromptTemplate | {type(model).__name__} | StrOutputParser")
    console.print(f"[dim]input:[/] {escape(json.dumps(inputs, ensure_ascii=False))}", soft_wrap=True)
    pieces = list(chain.stream(inputs))
    usage = reply.usage
    console.print(
        Panel(
            Text("".join(pieces).strip()),
            title=f"streamed in {len(pieces)} chunks",
            subtitle=f"first reply: {usage.input_tokens} tokens in, {usage.output_tokens} out, $0 (local)",
            expand=False,
        )
    )


def _extraction(console: Console) -> None:
    from rich.markup import escape

    from ..demo.extraction import TEXT, extract_trip

    console.print(f"[dim]text:[/] {escape(TEXT)}", soft_wrap=True)
    trip = extract_trip(local_model())
    console.print(f"[bold]{type(trip).__name__}[/] (validated): {escape(repr(trip))}", soft_wrap=True)


def _composition(console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..demo.composition_tour import run_tour

    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("primitive", style="cyan", no_wrap=True)
    table.add_column("what it did")
    for primitive, outcome in run_tour():
        table.add_row(Text(primitive), Text(outcome))
    console.print(table)


def _cost_cache_trace(console: Console) -> None:
    import tempfile

    from ..demo.cost_cache_trace import run_demo
    from ..tracing.render import trace_tree

    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp))
    usage, budget = result["usage"], result["budget"]
    console.print(
        f"{len(result['answers'])} answers and one stream: {usage.requests} requests reached the model, "
        f"{usage.cache_hits} were served by the SQLite cache (free); budget charged "
        f"{budget.requests} of 10 requests, ${budget.spent_cost:.6f} of $0.10"
    )
    console.print(usage)  # the tracker renders as its usage table
    console.print(f"{len(result['traces'])} traces recorded; the first one:")
    console.print(trace_tree(result["last_trace"]))


def _rag(console: Console) -> None:
    import tempfile

    from rich.markup import escape

    from ..demo.ask_docs import installed_readme, run_demo

    try:
        model = local_model()
    except ModuleNotFoundError:  # without the "local" extra the answers are quoted, not written
        model = None
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp) / "kb", [installed_readme(Path(tmp))], model=model)
    first, second = result["first"], result["second"]
    console.print(
        f"ingested maru's README → {first.chunks} chunks in {result['first_s']:.1f} s; a second "
        f"ingest found it unchanged ({second.files_unchanged} file) and embedded nothing "
        f"({result['second_s']:.2f} s)"
    )
    for answer in result["answers"]:
        console.print(f"[bold]Q:[/] {answer.question}")
        how = {"llm": f"written by {getattr(model, 'model_name', '')}", "not_found": "not found"}.get(answer.mode, answer.mode)
        console.print(f"[bold]A[/] [dim]({how})[/]: {escape(answer.text)}", soft_wrap=True)
        cited = ", ".join(f"\\[{c.n}] {escape(Path(c.source).name)}" for c in answer.citations)
        console.print(f"[dim]   sources: {cited}[/]", soft_wrap=True)


TRAIN_COMMAND = ["--standalone", "--nproc-per-node", "2", "-m", "maru.demo.linear_regression",
                 "--strategy", "ddp", "--steps", "200"]


def _train(console: Console) -> None:
    import subprocess
    import tempfile

    require_module("torch")  # checked here: the run itself happens in two other processes
    from ..train.loggers import read_metrics
    from ..train.plot import plot_run

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "torch.distributed.run", *TRAIN_COMMAND, "--run-dir", tmp, "--no-progress"]
        console.print(f"[dim]$ torchrun {' '.join(TRAIN_COMMAND)}[/]")
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
        "Chat: messages, a prompt template, a real local model and a parser",
        "maru.demo.travel_guide (examples/chat_travel_guide.py), SmolLM2-135M in process",
        _chat_chain,
        extra="local",
    ),
    DemoSection(
        "Structured extraction: a validated object from free text",
        "maru.demo.extraction: with_structured_output on the local model (grammar-constrained)",
        _extraction,
        extra="local",
    ),
    DemoSection(
        "Composition: every primitive of the runtime in one chain",
        "maru.demo.composition_tour (examples/composition_tour.py)",
        _composition,
    ),
    DemoSection(
        "Cost, budget, cache and traces around one chain",
        "maru.demo.cost_cache_trace (examples/cost_cache_trace.py)",
        _cost_cache_trace,
    ),
    DemoSection(
        "RAG: ingest maru's README, answer with citations, offline",
        "maru.demo.ask_docs with the local model; same code as `maru ingest` / `maru ask`",
        _rag,
        extra="rag",
    ),
    DemoSection(
        "Training: a 2-process DDP run under torchrun",
        "maru.demo.linear_regression with the maru Trainer, gloo on CPU",
        _train,
        extra="train",
    ),
]
