"""A floor for tests: ``assert_scores(result, recall_at_5=0.8, f1=0.5)`` fails with every metric
below its floor listed (and the questions that pulled it down), so a retrieval regression fails CI
like any other test."""

from __future__ import annotations

from typing import Any

__all__ = ["assert_scores", "metric_name"]


def metric_name(keyword: str) -> str:
    """A keyword as the metric it names: ``recall_at_5`` → ``recall@5``, ``hit_at_1`` → ``hit@1``."""
    return keyword.replace("_at_", "@")


def assert_scores(result: Any, **floors: float) -> None:
    """Raise ``AssertionError`` when a mean score of ``result`` (an
    :class:`~maru.eval.experiment.ExperimentResult`) is below its floor, or was not measured, or
    when a question failed."""
    summary = result.summary
    problems = [f"{r.question_id}: {r.error}" for r in result.errors]
    for keyword, floor in floors.items():
        metric = metric_name(keyword)
        if metric not in summary:
            problems.append(f"{metric} was not measured (measured: {', '.join(sorted(summary)) or 'nothing'})")
        elif summary[metric] < floor:
            worst = sorted((r for r in result.results if r.scores.get(metric) is not None), key=lambda r: r.scores[metric])[:3]
            shown = ", ".join(f"{r.question_id} ({r.scores[metric]:.2f})" for r in worst)
            problems.append(f"{metric} {summary[metric]:.3f} < {floor} (lowest: {shown})")
    if problems:
        raise AssertionError(f"experiment {result.name!r}: " + "; ".join(problems))
