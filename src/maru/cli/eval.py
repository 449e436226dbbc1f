"""``maru eval run / list / show / compare / corpus``: score a knowledge base on a dataset, keep the
experiment in the trace store, and compare experiments question by question.

``maru eval run`` builds the knowledge base and answering model exactly as ``maru ask`` does for the
same options (:func:`maru.cli.rag.served_knowledge_base`), so the score is the served pipeline's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._extras import needs_extra
from ._shared import command_group, fail, make_console
from .trace import TraceDb

if TYPE_CHECKING:
    from ..tracing.experiments import ExperimentInfo
    from ..tracing.store import RunStore

eval_app = command_group(
    "eval", help="Evaluate retrieval and answers on a dataset; list, show and compare experiments."
)

KEY_METRICS = ("recall@5", "ndcg@10", "mrr", "hit@1", "f1", "contains", "citations", "faithfulness", "relevance")
"""The metrics tables show, in this order, when measured."""
_CONFIG_KEYS = {"k": int, "sentences": int, "extractive": bool, "model": str, "base_url": str}
_KINDS = {int: "a whole number", bool: "true or false", str: "a string"}


@eval_app.command("run")
@needs_extra("rag", "maru eval run")
def eval_run(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="A .jsonl or .csv dataset, or a BEIR folder.")],
    kb: Annotated[
        Path | None, typer.Option("--kb", envvar="MARU_STORE", help="The knowledge-base folder (as maru ask --store).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A TOML or JSON file: k, sentences, extractive, model, base_url.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="The experiment's name (default: dataset + config digest).")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="How many passages to answer from (as maru ask).")] = None,
    extractive: Annotated[bool | None, typer.Option("--extractive/--llm", help="Quote sentences, or ask the model (default).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Model name.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")] = None,
    judge: Annotated[bool, typer.Option("--judge", help="Also score faithfulness and relevance with a chat model.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Replace an experiment of this name instead of continuing it.")] = False,
    floors: Annotated[
        list[str] | None, typer.Option("--min", help="Exit 1 when a mean score is below this, e.g. --min recall@5=0.8.")
    ] = None,
    db: TraceDb = None,
) -> None:
    """Run every question of a dataset through the knowledge base as `maru ask` would answer it,
    score it and store the experiment (with each question's trace) in the trace store. Running it
    again with the same name continues where it stopped."""
    from ..eval import evaluate, load_dataset
    from ..eval.testing import assert_scores
    from ..tracing.store import RunStore
    from .rag import served_knowledge_base

    settings = _settings(config, k=k, extractive=extractive, model=model, base_url=base_url)
    wanted = _floors(floors or [])
    data = load_dataset(dataset)
    knowledge, chat_model = served_knowledge_base(
        kb, settings.get("k", 4), settings.get("extractive", False), settings.get("model"), settings.get("base_url")
    )
    try:
        pipeline = knowledge.evaluation_pipeline(k=settings.get("k", 4), sentences=settings.get("sentences"), model=chat_model)
        result = evaluate(data, pipeline, name=name, judge=_judge(judge, settings), store=RunStore(db), restart=restart)
    finally:
        knowledge.close()
    console = _console()
    console.print(f"experiment {result.name}: {len(result.results)} questions of {data.name} → {result.store}", markup=False)
    console.print(_summary_table([_info_of(result)]))
    for failed in result.errors[:5]:
        console.print(f"failed: {failed.question_id}: {failed.error}", markup=False, soft_wrap=True)
    console.print(f"maru eval show {result.name}  ·  maru trace ui (Experiments)", markup=False, style="dim")
    if wanted:
        try:
            assert_scores(result, **wanted)
        except AssertionError as exc:
            fail(str(exc), code=1)


@eval_app.command("list")
def eval_list(db: TraceDb = None) -> None:
    """List the experiments in the trace store, newest first, with their mean scores."""
    experiments = _open(db).experiments.all()
    console = _console()
    if not experiments:
        console.print("No experiments yet: maru eval run --dataset D --kb K", markup=False)
        return
    console.print(_summary_table(experiments))


@eval_app.command("show")
def eval_show(
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    db: TraceDb = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the experiment and its questions as JSON.")] = False,
) -> None:
    """One experiment: its config, mean scores, and each question's scores and trace id."""
    store = _open(db)
    info = store.experiments.get(name)
    results = store.experiments.results(name)
    if as_json:
        from dataclasses import asdict

        shown = {**info.to_dict(), "results": [asdict(r) for r in results]}
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
        return
    console = _console()
    console.print(f"{info.name}: {info.dataset}, {info.done}/{info.questions} questions, {info.status}", markup=False)
    console.print("config: " + json.dumps(info.config, ensure_ascii=False), markup=False, soft_wrap=True)
    console.print(_summary_table([info]))
    metrics = _shown_metrics([info])
    table = _table(["question", *metrics, "trace"])
    for r in results:
        row = [_clip(f"{r.question_id}: {r.question}", 60), *(_score(r.scores.get(m)) for m in metrics)]
        table.add_row(*row, r.error and f"[red]{r.error[:40]}[/]" or (r.trace_id or ""))
    console.print(table)


@eval_app.command("compare")
def eval_compare(
    first: Annotated[str, typer.Argument(help="An experiment's name.")],
    second: Annotated[str, typer.Argument(help="Another experiment's name.")],
    db: TraceDb = None,
    all_questions: Annotated[bool, typer.Option("--all", help="Show every question, not only those that differ.")] = False,
) -> None:
    """Two experiments side by side: mean scores with the difference, then the questions whose
    scores differ (second minus first), with both trace ids."""
    compared = _open(db).experiments.compare([first, second])
    from ..tracing.experiments import ExperimentInfo

    infos = [ExperimentInfo(**e) for e in compared["experiments"]]
    console = _console()
    console.print(_summary_table(infos, delta=True))
    metrics = _shown_metrics(infos)
    table = _table(["question", *(f"Δ {m}" for m in metrics), f"trace {first}", f"trace {second}"])
    shown = 0
    for q in compared["questions"]:
        a, b = q["results"]
        deltas = [_delta((a or {}).get("scores", {}).get(m), (b or {}).get("scores", {}).get(m)) for m in metrics]
        if all_questions or any(d not in ("", "0") for d in deltas):
            table.add_row(_clip(f"{q['id']}: {q['question']}", 50), *deltas, (a or {}).get("trace_id") or "", (b or {}).get("trace_id") or "")
            shown += 1
    console.print(table if shown else "No question scores differently.")


@eval_app.command("corpus")
def eval_corpus(
    dataset: Annotated[Path, typer.Argument(help="A BEIR folder.")],
    folder: Annotated[Path, typer.Argument(help="Where to write one <id>.txt file per document.")],
) -> None:
    """Write a BEIR dataset's corpus as files for `maru ingest` (a passage's id is its file name)."""
    from ..eval import load_dataset

    paths = load_dataset(dataset).write_corpus(folder)
    _console().print(f"{len(paths)} documents → {folder}; next: maru ingest {folder} --store KB", markup=False)


# --------------------------------------------------------------------------- helpers
def _console() -> Any:
    """The console, wide when printing to a file or pipe (tables of scores would fold at 80)."""
    console = make_console()
    if not console.is_terminal:
        console.width = 200
    return console


def _open(db: Path | None) -> RunStore:
    from .trace import _open_trace_store

    return _open_trace_store(db)


def _settings(config: Path | None, **flags: Any) -> dict[str, Any]:
    """The pipeline settings: the config file's, then the flags given on the command line."""
    settings: dict[str, Any] = _read_config(config) if config else {}
    settings.update({key: value for key, value in flags.items() if value is not None})
    return settings


def _read_config(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read the config {path}: {exc}", "Give a TOML or JSON file with k, sentences, extractive, model, base_url.")
    unknown = sorted(set(data) - set(_CONFIG_KEYS))
    if unknown:
        fail(f"{path}: unknown setting {', '.join(unknown)}", f"Known: {', '.join(_CONFIG_KEYS)}.")
    for key, kind in _CONFIG_KEYS.items():
        if key in data and not isinstance(data[key], kind):
            fail(f"{path}: {key} must be {_KINDS[kind]}, got {data[key]!r}")
    return dict(data)


def _floors(items: list[str]) -> dict[str, float]:
    """``recall@5=0.8`` → ``{"recall_at_5": 0.8}`` (assert_scores' keywords)."""
    floors = {}
    for item in items:
        metric, _, value = item.partition("=")
        try:
            floors[metric.strip().replace("@", "_at_")] = float(value)
        except ValueError:
            fail(f"--min {item!r}: give METRIC=NUMBER, e.g. --min recall@5=0.8")
    return floors


def _judge(wanted: bool, settings: dict[str, Any]) -> Any:
    if not wanted:
        return None
    from ..eval import Judge
    from .chat import make_chat_model

    return Judge(make_chat_model(settings.get("model"), settings.get("base_url")))


def _info_of(result: Any) -> ExperimentInfo:
    from ..tracing.experiments import ExperimentInfo

    return ExperimentInfo(result.name, result.dataset, "", result.config, len(result.results), "done", 0.0, 0.0,
                          len(result.results), result.summary)


def _shown_metrics(infos: list[ExperimentInfo]) -> list[str]:
    measured = set().union(*(i.summary for i in infos))
    return [m for m in KEY_METRICS if m in measured]


def _summary_table(infos: list[ExperimentInfo], delta: bool = False) -> Any:
    metrics = _shown_metrics(infos)
    table = _table(["experiment", "questions", *metrics])
    for info in infos:
        table.add_row(info.name, f"{info.done}/{info.questions}" + ("" if info.status == "done" else " …"),
                      *(_score(info.summary.get(m)) for m in metrics))
    if delta and len(infos) == 2:
        table.add_row("Δ", "", *(_delta(infos[0].summary.get(m), infos[1].summary.get(m)) for m in metrics))
    return table


def _table(columns: list[str]) -> Any:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, highlight=False)
    for column in columns:  # questions wrap; names, ids and scores keep their width
        wraps = column == "question"
        table.add_column(column, no_wrap=not wraps, min_width=None if wraps else len(column), overflow="fold")
    return table


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    return "0" if abs(d) < 5e-4 else f"[green]+{d:.3f}[/]" if d > 0 else f"[red]{d:.3f}[/]"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

