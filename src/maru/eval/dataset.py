"""Evaluation datasets: questions with the ids of their relevant documents and/or reference answers.

Three layouts, chosen by what the path is:

- **JSONL** (``.jsonl``): one question per line, ``{"id", "question", "relevant", "answers"}``.
  ``relevant`` is a list of document ids or a ``{id: grade}`` object (grades for nDCG); ``answers``
  a list of strings or one string. ``id`` defaults to the line number.
- **CSV** (``.csv``): columns ``id`` (optional), ``question``, ``relevant`` and ``answers``; several
  ids or answers in one cell are separated by ``|``.
- **BEIR folder**: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
  ``text``) and ``qrels/test.tsv`` (``query-id  corpus-id  score``, a header line). Queries without
  a judgement are left out, as BEIR does.

Each question needs ``relevant`` or ``answers`` (or both). A row that cannot be read raises
:class:`~maru.errors.EvaluationError` naming the file, the line and what to fix.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvaluationError

__all__ = ["Dataset", "Example", "load_dataset"]

_LIST_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Example:
    """One question: ``relevant`` maps document ids to grades (1 when not graded); ``answers`` are
    the accepted reference answers."""

    id: str
    question: str
    relevant: Mapping[str, float] = field(default_factory=dict)
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dataset:
    """Questions, and — for a BEIR folder — the corpus they are asked against (``{id: text}``)."""

    name: str
    examples: tuple[Example, ...]
    corpus: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    @property
    def digest(self) -> str:
        """A short SHA-256 of the questions, judgements and answers: an experiment resumes only on
        the dataset it started with."""
        h = hashlib.sha256()
        for ex in self.examples:
            h.update(json.dumps([ex.id, ex.question, sorted(ex.relevant.items()), list(ex.answers)]).encode())
        return h.hexdigest()[:16]

    @classmethod
    def from_examples(cls, examples: Sequence[Example | Mapping[str, Any]], name: str = "dataset") -> Dataset:
        """A dataset from ``Example`` objects or dicts shaped like a JSONL row."""
        rows = [ex if isinstance(ex, Example) else _example(ex, str(i), f"example {i}") for i, ex in enumerate(examples, 1)]
        return cls(name, _unique(rows, name))

    def write_corpus(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the corpus as one ``<id>.txt`` file per document, ready for ``maru ingest`` (a
        passage's document id is then its file name without ``.txt``)."""
        if not self.corpus:
            raise EvaluationError(f"the dataset {self.name} has no corpus: only a BEIR folder brings one")
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for doc_id, text in self.corpus.items():
            path = target / f"{_file_safe(doc_id)}.txt"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        return paths


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """The dataset at ``path``: a ``.jsonl`` or ``.csv`` file, or a BEIR folder (module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _load_beir(path)
    if not path.exists():
        raise EvaluationError(f"no dataset at {path}: give a .jsonl or .csv file, or a BEIR folder")
    if path.suffix.lower() == ".jsonl":
        return Dataset(path.stem, _unique(list(_jsonl_examples(path)), str(path)))
    if path.suffix.lower() == ".csv":
        return Dataset(path.stem, _unique(list(_csv_examples(path)), str(path)))
    raise EvaluationError(
        f"cannot read the dataset {path}: give a .jsonl or .csv file, or a BEIR folder "
        "(corpus.jsonl, queries.jsonl, qrels/test.tsv)"
    )


# --------------------------------------------------------------------------- rows
def _example(row: Mapping[str, Any], default_id: str, where: str) -> Example:
    """One question from a parsed row; ``where`` names it in errors (file and line)."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvaluationError(f"{where} has no question: give a non-empty \"question\" string")
    relevant = _relevant(row.get("relevant"), where)
    answers = _answers(row.get("answers", row.get("answer")), where)
    if not relevant and not answers:
        raise EvaluationError(
            f"{where} has neither relevant document ids (\"relevant\") nor reference answers (\"answers\"); "
            "give at least one"
        )
    raw_id = row.get("id")
    return Example(str(raw_id) if raw_id not in (None, "") else default_id, question.strip(), relevant, answers)


def _relevant(value: Any, where: str) -> dict[str, float]:
    if value in (None, "", [], {}):
        return {}
    if isinstance(value, str):
        value = [v for v in (part.strip() for part in value.split(_LIST_SEPARATOR)) if v]
    if isinstance(value, Mapping):
        try:
            return {str(k): float(v) for k, v in value.items()}
        except (TypeError, ValueError):
            raise EvaluationError(f"{where}: \"relevant\" grades must be numbers, got {dict(value)!r:.120}") from None
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return {str(v): 1.0 for v in value}
    raise EvaluationError(
        f"{where}: \"relevant\" must be a list of document ids or an {{id: grade}} object, got {value!r:.120}"
    )


def _answers(value: Any, where: str) -> tuple[str, ...]:
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        value = [value] if _LIST_SEPARATOR not in value else value.split(_LIST_SEPARATOR)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise EvaluationError(f"{where}: \"answers\" must be a string or a list of strings, got {value!r:.120}")


def _unique(examples: list[Example], where: str) -> tuple[Example, ...]:
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise EvaluationError(f"{where}: the question id {ex.id!r} appears twice; ids must be unique")
        seen.add(ex.id)
    if not examples:
        raise EvaluationError(f"{where} holds no questions")
    return tuple(examples)


# --------------------------------------------------------------------------- files
def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line, or an error naming the line."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path} line {number} is not valid JSON ({exc.msg}); fix or remove it") from None
        if not isinstance(row, dict):
            raise EvaluationError(f"{path} line {number} is not a JSON object")
        yield number, row


def _jsonl_examples(path: Path) -> Iterator[Example]:
    for number, row in _json_lines(path):
        yield _example(row, str(number), f"{path} line {number}")


def _csv_examples(path: Path) -> Iterator[Example]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "question" not in reader.fieldnames:
                raise EvaluationError(
                    f"{path} has no \"question\" column; the header must name question and relevant and/or answers"
                )
            for row in reader:
                yield _example(row, str(reader.line_num), f"{path} line {reader.line_num}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from exc


def _load_beir(folder: Path) -> Dataset:
    parts = {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl", "qrels": folder / "qrels" / "test.tsv"}
    missing = [str(p.relative_to(folder)) for p in parts.values() if not p.is_file()]
    if missing:
        raise EvaluationError(
            f"{folder} is not a BEIR folder: {', '.join(missing)} missing (it needs corpus.jsonl, queries.jsonl, qrels/test.tsv)"
        )
    corpus = {str(_field(row, "_id", parts["corpus"], n)): _passage(row) for n, row in _json_lines(parts["corpus"])}
    queries = {str(_field(row, "_id", parts["queries"], n)): str(_field(row, "text", parts["queries"], n))
               for n, row in _json_lines(parts["queries"])}
    qrels = _qrels(parts["qrels"], queries, corpus)
    examples = [Example(qid, queries[qid], qrels[qid]) for qid in queries if qrels.get(qid)]
    return Dataset(folder.name, _unique(examples, str(folder)), corpus)


def _field(row: Mapping[str, Any], key: str, path: Path, number: int) -> Any:
    if row.get(key) in (None, ""):
        raise EvaluationError(f"{path} line {number} has no {key!r} field")
    return row[key]


def _passage(row: Mapping[str, Any]) -> str:
    title, text = str(row.get("title") or "").strip(), str(row.get("text") or "").strip()
    return f"{title}\n\n{text}" if title else text


def _qrels(path: Path, queries: Mapping[str, str], corpus: Mapping[str, str]) -> dict[str, dict[str, float]]:
    qrels: dict[str, dict[str, float]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        cells = line.split("\t") if "\t" in line else line.split()
        if not cells or (number == 1 and cells[0] == "query-id"):
            continue
        if len(cells) != 3:
            raise EvaluationError(f"{path} line {number}: expected query-id, corpus-id and score, got {line!r:.80}")
        qid, doc_id, score = cells
        try:
            grade = float(score)
        except ValueError:
            raise EvaluationError(f"{path} line {number}: the score {score!r} is not a number") from None
        if qid not in queries or doc_id not in corpus:
            unknown, which = ("query", qid) if qid not in queries else ("document", doc_id)
            raise EvaluationError(f"{path} line {number} names an unknown {unknown} ({which!r})")
        if grade > 0:
            qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def _file_safe(doc_id: str) -> str:
    """A document id as a file name: characters other than letters, digits, ``-_.`` become ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)
