"""``maru ingest PATH…`` and ``maru ask QUESTION``: index documents into a knowledge-base folder,
then answer from them with citations (written by the local model or a configured endpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .._home import maru_home
from . import chat
from ._extras import needs_extra
from ._shared import fail, make_console

STORE_HELP = "The knowledge-base folder (vectors, records, BM25 index); default kb in maru's home folder."
STAGE_LABELS = {"scan": "scanning files", "embed": "embedding chunks", "bm25": "building BM25 index"}

StoreOption = Annotated[
    Path | None, typer.Option("--store", envvar="MARU_STORE", help=STORE_HELP, show_envvar=True)
]


def _store_folder(store: Path | None) -> Path:
    """``--store``, else ``kb`` in maru's home folder (:mod:`maru._home`), so ``maru ask`` in any
    sub-folder of a project finds what ``maru ingest`` indexed at its top."""
    return store if store is not None else maru_home() / "kb"


@needs_extra("rag", "maru ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index (txt, md, html, pdf, csv, jsonl …).")],
    store: StoreOption = None,
    glob: Annotated[str, typer.Option("--glob", help="Which files of a folder to take.")] = "**/*",
) -> None:
    """Index documents for `maru ask`. Re-running skips unchanged files and removes deleted ones."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import LoaderError
    from ..rag.knowledge import KnowledgeBase

    console = make_console()
    store = _store_folder(store)
    kb = KnowledgeBase(store)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            report = kb.ingest([str(p) for p in paths], glob=glob, progress=progress)
        except LoaderError as exc:
            fail(str(exc))
        finally:
            kb.close()
    _print_ingest(console, report, paths, store)


def _print_ingest(console: Any, report: Any, paths: list[Path], store: Path) -> None:
    """The summary line, one line per repaired part and per failed file (file: why); exits 1 when
    a file failed or when there was nothing to ingest."""
    from rich.markup import escape

    for note in report.repaired:
        console.print(f"repaired: {escape(note)}", soft_wrap=True, highlight=False)
    result = report.result
    console.print(
        f"{report.files_seen} files: {len(report.sources)} indexed, {report.files_unchanged} unchanged, "
        f"{report.files_removed} removed, {len(report.failed)} failed; {report.chunks} chunks"
        + (f" (added {result.added}, updated {result.updated}, skipped {result.skipped}, deleted {result.deleted})" if result else "")
        + f" → {store}"
    )
    for file, why in report.failed:
        console.print(f"failed: {escape(file)}: {escape(why)}", soft_wrap=True, highlight=False)
    if report.files_seen == 0:
        from ..rag.loaders import DEFAULT_LOADERS

        fail(
            f"no files to ingest in {', '.join(str(p) for p in paths)}",
            f"Supported: {', '.join(sorted(DEFAULT_LOADERS))}; --glob chooses which files of a folder to take.",
            code=1,
        )
    if report.failed:
        raise typer.Exit(1)


_MODES = {
    "llm": "answer",
    "extractive": "answer (extractive: quoted from the sources)",
    "not_found": "answer",
}


KOption = Annotated[int, typer.Option("--k", "-k", help="How many passages to retrieve.")]
ExtractiveOption = Annotated[
    bool, typer.Option("--extractive", help="Answer with quoted sentences instead of asking a model.")
]
ModelOption = Annotated[str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Model name.")]
BaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")
]


@needs_extra("rag", "maru ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question, in any language.")],
    store: StoreOption = None,
    k: KOption = 4,
    extractive: ExtractiveOption = False,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
) -> None:
    """Answer a question from the documents `maru ingest` indexed, citing its sources.

    A chat model writes the answer from the top passages, citing them as [n]: the bundled local
    model, or the endpoint OPENAI_BASE_URL / OPENAI_API_KEY name. With --extractive the answer is
    the best sentences of the passages, each cited. When no passage is relevant, it says so.
    `maru eval run` with the same options scores this same answering on a dataset.
    """
    from rich.markup import escape

    from ..errors import IndexingError, LoaderError

    console = make_console()
    kb, chat_model = served_knowledge_base(store, k, extractive, model, base_url)
    try:
        answer = kb.ask(question, k=k, model=chat_model)
    except (LoaderError, IndexingError) as exc:
        fail(str(exc))
    finally:
        kb.close()
    mode = _MODES[answer.mode]
    console.print(f"[bold]{mode}:[/] {escape(answer.text)}", soft_wrap=True)
    console.print("[bold]sources:[/]")
    for c in answer.citations:
        console.print(f"  \\[{c.n}] {escape(c.source)}: [dim]{escape(_opening(c.text))}[/]", soft_wrap=True, highlight=False)


def served_knowledge_base(
    store: Path | None, k: int, extractive: bool, model: str | None, base_url: str | None
) -> tuple[Any, Any]:
    """The knowledge base and the chat model (``None``: extractive) that `maru ask` answers with
    for these options — and that `maru eval run` evaluates, so what is scored is what is served.
    Exits 2 saying what to do when there is no knowledge base or its index cannot be opened."""
    from ..errors import IndexingError, LoaderError
    from ..rag.knowledge import KnowledgeBase

    store = _store_folder(store)
    if not (store / "vectors").exists():
        fail(f"no knowledge base at {store}", f"Index documents first:  maru ingest PATH --store {store}")
    kb = KnowledgeBase(store)
    try:
        kb.retriever(k)  # opens the index first: a missing "rag" extra is reported before any model
        chat_model = None if extractive else chat.make_chat_model(model or None, base_url or None)
    except (LoaderError, IndexingError) as exc:
        kb.close()
        fail(str(exc))
    except BaseException:
        kb.close()
        raise
    return kb, chat_model


def _opening(passage: str, width: int = 70) -> str:
    """The start of a cited passage on one line, so a reader sees which part of the file it is
    (the retriever's scores are rank-fusion weights, meaningless to a reader)."""
    text = " ".join(passage.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
