"""Running an experiment: every question of a dataset through a pipeline, scored, stored.

``evaluate(dataset, target)`` is a ladder: load the dataset → make the target a pipeline → open the
experiment in the trace store (or take it up again) → for each question not done yet: run it as
one traced run, score it, store it → mark the experiment done. Each question is committed as it
finishes, so an experiment stopped by Ctrl-C or SIGKILL continues where it stopped when it is run
again with the same name (the default name is the same for the same dataset and config).

Every question's run — retrieval, answer, judge — is one trace in the same store as the experiment,
and its result row holds that trace's id, so the viewer links each score to the run behind it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, IndexingError, LoaderError, VectorStoreError
from ..tracing.experiments import QuestionResult, summarize
from .answers import answer_scores
from .citations import check_citations
from .dataset import Dataset, Example, load_dataset
from .judge import Judge
from .pipeline import Output, Pipeline, as_pipeline
from .progress import ProgressBar
from .retrieval import DEPTH, retrieval_scores

__all__ = ["ExperimentResult", "evaluate"]

_SETUP_ERRORS = (ConfigurationError, LoaderError, IndexingError, VectorStoreError)
"""Errors that would fail every question alike: they stop the experiment instead of being recorded."""
_KEPT_PASSAGE_CHARS = 600


@dataclass(slots=True)
class ExperimentResult:
    """An experiment's questions (dataset order) and their mean scores; ``result["recall@5"]`` is
    one mean, :func:`maru.eval.assert_scores` checks floors."""

    name: str
    dataset: str
    config: dict[str, Any]
    results: list[QuestionResult]
    store: str

    @property
    def summary(self) -> dict[str, float]:
        return summarize(r.scores for r in self.results if r.error is None)

    @property
    def errors(self) -> list[QuestionResult]:
        return [r for r in self.results if r.error is not None]

    def __getitem__(self, metric: str) -> float:
        return self.summary[metric]

    def __iter__(self) -> Iterator[QuestionResult]:
        return iter(self.results)


def evaluate(
    dataset: Dataset | str | os.PathLike[str],
    target: Any,
    *,
    name: str | None = None,
    judge: Judge | Any = None,
    store: Any = None,
    restart: bool = False,
    progress: bool = True,
) -> ExperimentResult:
    """Run every question of ``dataset`` (a :class:`Dataset` or a path for :func:`load_dataset`)
    through ``target`` (a ``KnowledgeBase``, a retriever, a runnable, a function or a
    :class:`~maru.eval.pipeline.Pipeline`) and store the experiment ``name`` in the trace store
    ``store`` (a ``RunStore``, a path, or ``None``: the default one ``maru trace ui`` shows).

    ``judge``: a :class:`Judge` or a chat model scores faithfulness and relevance (``True``: the
    default model). Taking up an experiment of the same name continues it; with another dataset or
    config that raises :class:`~maru.errors.EvaluationError` unless ``restart=True``."""
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    pipeline = as_pipeline(target)
    judging = _judge(judge)
    config = {**pipeline.config(), **(judging.config() if judging else {})}
    name = name or default_name(data, config)
    runs = _store(store)
    experiments = runs.experiments
    done = experiments.start(name, dataset=data.name, digest=data.digest, config=config,
                             questions=len(data), restart=restart)
    _run_remaining(name, data, pipeline, judging, runs, done, progress)
    experiments.finish(name)
    return ExperimentResult(name, data.name, config, experiments.results(name), str(runs.path))


def default_name(dataset: Dataset, config: dict[str, Any]) -> str:
    """``<dataset>-<6 hex of the config>``: the same dataset and config get the same name, so
    running it again continues it."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{dataset.name}-{digest}"


# --------------------------------------------------------------------------- the ladder's steps
def _judge(judge: Any) -> Judge | None:
    if judge is None or judge is False:
        return None
    if isinstance(judge, Judge):
        return judge
    return Judge(None if judge is True else judge)


def _store(store: Any) -> Any:
    from ..tracing.store import RunStore

    return store if isinstance(store, RunStore) else RunStore(store)


def _run_remaining(
    name: str, data: Dataset, pipeline: Pipeline, judge: Judge | None, runs: Any, done: set[str], progress: bool
) -> None:
    """Each question not scored yet, traced into ``runs`` and stored as it finishes."""
    from ..tracing import tracing

    bar = ProgressBar(f"eval {name}", len(data), len(done)) if progress else None
    count = len(done)
    try:
        with tracing([runs]) as tracer:
            for position, example in enumerate(data.examples):
                if example.id in done:
                    continue
                result = _question(name, position, example, pipeline, judge)
                tracer.flush()  # a stored result's trace is in the store too, even if the process dies next
                runs.experiments.record(name, result)
                count += 1
                if bar:
                    bar.update(count)
    finally:
        if bar:
            bar.close()


def _question(name: str, position: int, example: Example, pipeline: Pipeline, judge: Judge | None) -> QuestionResult:
    """One question as one traced run (``eval <name>``), its trace id caught as the run starts."""
    from ..core.events import listen
    from ..core.runnable import runnable

    caught: list[str] = []

    def first_trace(event: Any) -> None:
        if not caught:
            caught.append(event.trace_id)

    step = runnable(lambda ex: _answer_and_score(ex, pipeline, judge), name=f"eval {name}")
    result = QuestionResult(example.id, example.question, position)
    with listen(first_trace):
        try:
            result.scores, result.output, result.judgements = step.invoke(example)
        except _SETUP_ERRORS:
            raise
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
    result.trace_id = caught[0] if caught else None
    return result


def _answer_and_score(
    example: Example, pipeline: Pipeline, judge: Judge | None
) -> tuple[dict[str, float | None], dict[str, Any], dict[str, dict[str, Any]]]:
    wants_answer = bool(example.answers) or judge is not None
    out = pipeline.run(example.question, depth=DEPTH, answer=wants_answer)
    scores: dict[str, float | None] = {}
    if example.relevant:
        scores.update(retrieval_scores(out.ranked, example.relevant))
    checks: list[dict[str, Any]] = []
    if out.answer is not None:
        if example.answers:
            scores.update(answer_scores(out.answer, example.answers))
        scores["citations"], checks = check_citations(out.answer, out.passages)
    judgements = _judgements(example, out, judge) if judge and out.answer else {}
    scores.update({metric: j["score"] for metric, j in judgements.items()})
    return scores, _kept_output(example, out, checks), judgements


def _judgements(example: Example, out: Output, judge: Judge) -> dict[str, dict[str, Any]]:
    from dataclasses import asdict

    assert out.answer is not None
    made = {"relevance": judge.relevance(example.question, out.answer)}
    if out.passages:
        made["faithfulness"] = judge.faithfulness(example.question, out.answer, out.passages)
    return {metric: asdict(j) for metric, j in made.items()}


def _kept_output(example: Example, out: Output, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """What the viewer and ``maru eval show`` need to explain a score."""
    return {
        "answer": out.answer,
        "ranked": out.ranked[:DEPTH],
        "relevant": dict(example.relevant),
        "answers": list(example.answers),
        "citations": checks,
        "passages": [p[:_KEPT_PASSAGE_CHARS] for p in out.passages],
    }
