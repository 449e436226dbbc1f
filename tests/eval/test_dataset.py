"""Datasets from JSONL, CSV and a BEIR folder (a real Cranfield slice); one clear error per bad row or file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maru.errors import EvaluationError
from maru.eval import Dataset, load_dataset

from ._data import cranfield_beir


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def test_jsonl_rows_take_ids_grades_and_answers(tmp_path: Path) -> None:
    path = _write(tmp_path / "qa.jsonl", [
        {"id": "q1", "question": "Where?", "relevant": ["d1", "d2"]},
        "",
        {"question": "Graded?", "relevant": {"d3": 2, "d4": 1}, "answers": "yes"},
        {"question": "서울은?", "answers": ["수도", "capital"]},
    ])
    data = load_dataset(path)
    assert data.name == "qa" and len(data) == 3
    first, second, third = data
    assert (first.id, dict(first.relevant), first.answers) == ("q1", {"d1": 1.0, "d2": 1.0}, ())
    assert (second.id, dict(second.relevant), second.answers) == ("3", {"d3": 2.0, "d4": 1.0}, ("yes",))
    assert third.answers == ("수도", "capital") and not third.relevant
    assert data.digest == load_dataset(path).digest


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", r"qa.jsonl line 2 is not valid JSON"),
    ({"relevant": ["d1"]}, r"line 2 has no question"),
    ({"question": "Q?"}, r"line 2 has neither relevant document ids .* nor reference answers"),
    ({"question": "Q?", "relevant": 5}, r"line 2: \"relevant\" must be a list of document ids"),
    ({"question": "Q?", "relevant": {"d": "high"}}, r"line 2: \"relevant\" grades must be numbers"),
    ({"question": "Q?", "answers": [1, 2]}, r"line 2: \"answers\" must be a string or a list of strings"),
    ({"id": "a", "question": "Q?", "answers": "x"}, r"the question id 'a' appears twice"),
    ([1, 2], r"line 2 is not a JSON object"),
])
def test_a_bad_jsonl_row_is_named_with_what_to_fix(tmp_path: Path, line: object, message: str) -> None:
    path = _write(tmp_path / "qa.jsonl", [{"id": "a", "question": "ok?", "answers": "x"}, line])
    with pytest.raises(EvaluationError, match=message):
        load_dataset(path)


def test_csv_cells_hold_several_ids_or_answers(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("id,question,relevant,answers\nq1,Where?,d1|d2,\nq2,\"Who, then?\",,Ada|Lovelace\n", encoding="utf-8")
    q1, q2 = load_dataset(path)
    assert dict(q1.relevant) == {"d1": 1.0, "d2": 1.0} and q1.answers == ()
    assert q2.question == "Who, then?" and q2.answers == ("Ada", "Lovelace")
    bad = tmp_path / "bad.csv"
    bad.write_text("query,relevant\nx,d1\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match="has no \"question\" column"):
        load_dataset(bad)
    empty_row = tmp_path / "row.csv"
    empty_row.write_text("question,relevant\nok,d1\n,d2\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"row.csv line 3 has no question"):
        load_dataset(empty_row)


def test_a_beir_folder_of_real_cranfield_data(tmp_path: Path) -> None:
    folder = cranfield_beir(tmp_path / "cran")
    data = load_dataset(folder)
    assert data.name == "cran" and len(data) == 8 and len(data.corpus) == 60
    assert all(ex.relevant and set(ex.relevant) <= set(data.corpus) for ex in data)
    files = data.write_corpus(tmp_path / "files")
    assert len(files) == 60 and files[0].read_text(encoding="utf-8") == data.corpus[files[0].stem]


def test_a_broken_beir_folder_says_what_is_missing_or_wrong(tmp_path: Path) -> None:
    folder = cranfield_beir(tmp_path / "cran")
    qrels = folder / "qrels" / "test.tsv"
    qid = qrels.read_text().splitlines()[1].split("\t")[0]
    qrels.write_text(qrels.read_text() + f"{qid}\tnot-a-doc\t1\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"test.tsv line \d+ names an unknown document \('not-a-doc'\)"):
        load_dataset(folder)
    qrels.unlink()
    with pytest.raises(EvaluationError, match=r"is not a BEIR folder: qrels/test.tsv missing"):
        load_dataset(folder)
    with pytest.raises(EvaluationError, match="no dataset at"):
        load_dataset(tmp_path / "nothing.jsonl")
    (tmp_path / "qa.txt").write_text("x")
    with pytest.raises(EvaluationError, match="give a .jsonl or .csv file, or a BEIR folder"):
        load_dataset(tmp_path / "qa.txt")


def test_datasets_from_python_objects() -> None:
    data = Dataset.from_examples([{"question": "Q?", "relevant": ["a"]}, {"id": "x", "question": "R?", "answers": "b"}])
    assert [ex.id for ex in data] == ["1", "x"]
    with pytest.raises(EvaluationError, match="has no corpus"):
        data.write_corpus("/nonexistent")
