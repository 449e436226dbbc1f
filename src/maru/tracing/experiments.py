"""Experiments in the trace store: a dataset, a pipeline config and the scores of every question,
each question linked to the trace of its run (``maru eval``; the viewer's experiments page).

Two tables beside ``runs`` (schema version 4, :mod:`maru.tracing.store`):

- ``experiments``: one row per name — dataset name and digest, config (JSON), how many questions
  the dataset has, ``running`` or ``done``, created/updated times.
- ``experiment_results``: one row per (experiment, question) — the question, its trace id, scores
  (``{metric: value or null}``), output (answer, ranked ids, what was expected, citation checks)
  and judgements (``{metric: {score, reasoning, model}}``), committed as each question finishes, so
  an interrupted experiment (Ctrl-C, SIGKILL) keeps what it did and the next run with the same name
  does only the rest.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _sqlite
from ..errors import EvaluationError

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["TABLES", "ExperimentInfo", "Experiments", "QuestionResult", "summarize"]

TABLES = (
    "CREATE TABLE experiments ("
    " name TEXT PRIMARY KEY,"
    " dataset TEXT NOT NULL,"
    " dataset_digest TEXT NOT NULL,"
    " config TEXT NOT NULL,"
    " questions INTEGER NOT NULL,"
    " status TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " updated REAL NOT NULL)",
    "CREATE TABLE experiment_results ("
    " experiment TEXT NOT NULL,"
    " question_id TEXT NOT NULL,"
    " position INTEGER NOT NULL,"
    " question TEXT NOT NULL,"
    " trace_id TEXT,"
    " scores TEXT NOT NULL,"
    " output TEXT NOT NULL,"
    " judgements TEXT NOT NULL,"
    " error TEXT,"
    " created REAL NOT NULL,"
    " PRIMARY KEY (experiment, question_id))",
)
"""The experiment tables: part of a new store's schema, and the upgrade of a version-3 store."""

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


@dataclass(slots=True)
class QuestionResult:
    """One question of an experiment: its scores, output and judgements, and its trace."""

    question_id: str
    question: str
    position: int
    scores: dict[str, float | None] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    judgements: dict[str, dict[str, Any]] = field(default_factory=dict)
    trace_id: str | None = None
    error: str | None = None


@dataclass(slots=True)
class ExperimentInfo:
    """An experiment's row plus ``done`` (questions scored so far) and ``summary`` (mean scores)."""

    name: str
    dataset: str
    dataset_digest: str
    config: dict[str, Any]
    questions: int
    status: str
    created: float
    updated: float
    done: int = 0
    summary: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def summarize(scores: Iterable[Mapping[str, float | None]]) -> dict[str, float]:
    """The mean of each metric over the questions that have a value for it."""
    totals: dict[str, list[float]] = {}
    for row in scores:
        for metric, value in row.items():
            if value is not None:
                totals.setdefault(metric, []).append(float(value))
    return {metric: sum(values) / len(values) for metric, values in totals.items()}


class Experiments:
    """The experiments of a :class:`~maru.tracing.store.RunStore` (its connections, locking and errors)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    # ----------------------------------------------------------------- writing
    def start(
        self, name: str, *, dataset: str, digest: str, config: Mapping[str, Any], questions: int, restart: bool = False
    ) -> set[str]:
        """Create the experiment ``name``, or take it up again: returns the ids of the questions it
        already scored (a question that failed is run again). An experiment of that name with
        another dataset or config raises :class:`~maru.errors.EvaluationError`, unless it has no
        results yet or ``restart=True``: then it is replaced."""
        config_json = _dumps(dict(config))
        now = time.time()

        def transaction(conn: sqlite3.Connection) -> set[str]:
            row = conn.execute("SELECT dataset_digest, config FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is not None and (restart or not _has_results(conn, name)):  # nothing to keep
                _delete(conn, name)
                row = None
            if row is None:
                conn.execute(
                    "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                    (name, dataset, digest, config_json, questions, now, now),
                )
                return set()
            _check_same(name, row, digest, config)
            conn.execute("UPDATE experiments SET status = 'running', updated = ? WHERE name = ?", (now, name))
            done = "SELECT question_id FROM experiment_results WHERE experiment = ? AND error IS NULL"
            return {r[0] for r in conn.execute(done, (name,))}

        return self._write(transaction)

    def record(self, name: str, result: QuestionResult) -> None:
        """Store one question's result (committed before this returns)."""
        values = (
            name, result.question_id, result.position, result.question, result.trace_id, _dumps(result.scores),
            _dumps(result.output), _dumps(result.judgements), result.error, time.time(),
        )

        def transaction(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT OR REPLACE INTO experiment_results VALUES ({', '.join('?' * len(values))})", values)
            conn.execute("UPDATE experiments SET updated = ? WHERE name = ?", (values[-1], name))

        self._write(transaction)

    def finish(self, name: str) -> None:
        self._write(lambda conn: conn.execute(
            "UPDATE experiments SET status = 'done', updated = ? WHERE name = ?", (time.time(), name)
        ))

    def delete(self, name: str) -> bool:
        """Delete the experiment and its results; ``False`` when there was none."""
        return bool(self._write(lambda conn: _delete(conn, name)))

    # ----------------------------------------------------------------- reading
    def all(self) -> list[ExperimentInfo]:
        """Every experiment, newest first, with its mean scores."""
        rows = self.store._query(f"{_INFO} ORDER BY created DESC, name")
        return [self._info(row) for row in rows]

    def get(self, name: str) -> ExperimentInfo:
        rows = self.store._query(f"{_INFO} WHERE name = ?", (name,))
        if not rows:
            known = ", ".join(i.name for i in self.all()[:10]) or "none yet"
            raise EvaluationError(f"no experiment {name!r} in {self.store.path} (experiments: {known})")
        return self._info(rows[0])

    def results(self, name: str) -> list[QuestionResult]:
        """The experiment's questions in dataset order."""
        rows = self.store._query(
            "SELECT question_id, question, position, scores, output, judgements, trace_id, error "
            "FROM experiment_results WHERE experiment = ? ORDER BY position",
            (name,),
        )
        return [
            QuestionResult(qid, question, position, json.loads(scores), json.loads(output), json.loads(judgements), trace, error)
            for qid, question, position, scores, output, judgements, trace, error in rows
        ]

    def compare(self, names: Sequence[str]) -> dict[str, Any]:
        """The experiments side by side: their summaries, and per question (in the first one's
        order, then any others) each experiment's result or ``None``."""
        infos = [self.get(name) for name in names]
        by_name = {name: {r.question_id: r for r in self.results(name)} for name in names}
        order = list(dict.fromkeys(qid for name in names for qid in by_name[name]))
        questions = []
        for qid in order:
            present = [by_name[n][qid] for n in names if qid in by_name[n]]
            questions.append({
                "id": qid,
                "question": present[0].question,
                "results": [_result_json(by_name[n].get(qid)) for n in names],
            })
        return {"experiments": [i.to_dict() for i in infos], "questions": questions}

    # ----------------------------------------------------------------- helpers
    def _info(self, row: Sequence[Any]) -> ExperimentInfo:
        name, dataset, digest, config, questions, status, created, updated = row
        info = ExperimentInfo(name, dataset, digest, json.loads(config), questions, status, created, updated)
        scores = self.store._query("SELECT scores FROM experiment_results WHERE experiment = ?", (info.name,))
        info.done = len(scores)
        info.summary = summarize(json.loads(s[0]) for s in scores)
        return info

    def _write(self, transaction: Callable[[sqlite3.Connection], Any]) -> Any:
        result = None

        def run() -> None:
            nonlocal result
            conn = self.store._conn()
            with _sqlite.write_transaction(conn):
                result = transaction(conn)

        try:
            _sqlite.retry_busy(run, self.store.timeout)
        except sqlite3.Error as exc:
            raise self.store._error(exc) from exc
        return result


_INFO = "SELECT name, dataset, dataset_digest, config, questions, status, created, updated FROM experiments"


def _has_results(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM experiment_results WHERE experiment = ? LIMIT 1", (name,)).fetchone() is not None


def _delete(conn: sqlite3.Connection, name: str) -> int:
    conn.execute("DELETE FROM experiment_results WHERE experiment = ?", (name,))
    return int(conn.execute("DELETE FROM experiments WHERE name = ?", (name,)).rowcount)


def _check_same(name: str, row: Sequence[Any], digest: str, config: Mapping[str, Any]) -> None:
    """Refuse to continue an experiment on another dataset or config, saying what differs."""
    old_digest, old_config = row[0], json.loads(row[1])
    new_config = json.loads(_dumps(dict(config)))
    if old_digest != digest:
        differs = "another dataset (its questions or judgements changed)"
    elif old_config != new_config:
        keys = sorted(k for k in old_config.keys() | new_config.keys() if old_config.get(k) != new_config.get(k))
        differs = "another config (" + ", ".join(f"{k}: {old_config.get(k)!r} → {new_config.get(k)!r}" for k in keys) + ")"
    else:
        return
    raise EvaluationError(
        f"the experiment {name!r} was started with {differs}; give a new name (--name), or restart it "
        "(--restart, restart=True) to replace its results"
    )


def _result_json(result: QuestionResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "scores": result.scores, "output": result.output, "judgements": result.judgements,
        "trace_id": result.trace_id, "error": result.error,
    }
