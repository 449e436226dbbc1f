"""Experiments end to end on real data slices: a KnowledgeBase built from Cranfield (BEIR folder)
and KorQuAD (JSONL), stored in the trace store with each question's trace; resumed after Ctrl-C and
after SIGKILL; refused on another config; floors asserted."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maru.errors import EvaluationError
from maru.eval import Dataset, Judge, Output, assert_scores, evaluate, load_dataset
from maru.eval.progress import ProgressBar
from maru.models import ScriptedChatModel
from maru.tracing.store import SCHEMA_VERSION, RunStore

from ._data import build_kb, cranfield_beir, korquad_jsonl

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Any]:
    folder = tmp_path_factory.mktemp("cran")
    data = load_dataset(cranfield_beir(folder / "beir"))
    data.write_corpus(folder / "files")
    kb = build_kb(folder / "kb", folder / "files")
    yield data, kb
    kb.close()


@pytest.fixture(scope="module")
def korquad(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("korquad")
    corpus, dataset = korquad_jsonl(folder)
    kb = build_kb(folder / "kb", corpus)
    yield dataset, kb
    kb.close()


def test_a_knowledge_base_scored_on_cranfield_is_stored_with_its_traces(cranfield: Any, tmp_path: Path) -> None:
    data, kb = cranfield
    store = RunStore(tmp_path / "traces.sqlite")
    result = kb.evaluate(data, store=store, name="cran-hybrid")
    assert [r.question_id for r in result] == [ex.id for ex in data]
    assert result.config["retriever"] == "HybridRetriever" and result.config["k"] == 4
    summary = result.summary
    assert set(summary) == {"recall@1", "recall@5", "recall@10", "ndcg@10", "mrr", "hit@1"}  # no answers asked for
    assert summary["recall@10"] > 0.5 and summary["ndcg@10"] > 0.4  # BM25 carries it (hash embeddings)
    assert_scores(result, recall_at_10=0.5, ndcg_at_10=0.4)
    # Each question is one trace in the same store, named after the experiment.
    for r in result:
        runs = store.get_trace(r.trace_id)
        assert runs and runs[0].name == "eval cran-hybrid" and any(run.name == "HybridRetriever" for run in runs)
    info = store.experiments.get("cran-hybrid")
    assert (info.status, info.done, info.questions) == ("done", 8, 8)
    assert info.summary == pytest.approx(summary)


def test_korquad_answers_are_scored_with_their_citations(korquad: Any, tmp_path: Path) -> None:
    dataset, kb = korquad
    result = kb.evaluate(dataset, store=tmp_path / "traces.sqlite", sentences=1)
    assert result.name.startswith("korquad-") and result.config["writer"] == "extractive (1 sentences)"
    summary = result.summary
    assert summary["hit@1"] >= 0.8  # Korean BM25 (Kiwi morphemes) finds the paragraph
    assert summary["contains"] >= 0.3 and 0 <= summary["f1"] <= 1
    assert summary["citations"] >= 0.9  # an extractive answer quotes the passage it cites
    first = result.results[0]
    assert first.output["answer"] and first.output["citations"][0]["supported"] is True


def test_floors_fail_with_the_metric_and_the_questions_that_pulled_it_down(cranfield: Any, tmp_path: Path) -> None:
    data, kb = cranfield
    result = kb.evaluate(data, store=tmp_path / "t.sqlite")
    with pytest.raises(AssertionError, match=r"recall@1 0\.\d+ < 0\.99 \(lowest: \d+ \(0\.\d\d\)"):
        assert_scores(result, recall_at_1=0.99)
    with pytest.raises(AssertionError, match="f1 was not measured"):
        assert_scores(result, f1=0.1)


class Counting:
    """A pipeline that answers with the question's last word and can stop the experiment."""

    def __init__(self, interrupt_at: int = 0, k: int = 1) -> None:
        self.calls: list[str] = []
        self.interrupt_at, self.k = interrupt_at, k

    def config(self) -> dict[str, Any]:
        return {"pipeline": "counting", "k": self.k}

    def run(self, question: str, *, depth: int, answer: bool) -> Output:
        self.calls.append(question)
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        word = question.split()[-1]
        return Output([word], word, [question])


def _words(n: int) -> Dataset:
    return Dataset.from_examples([{"id": f"q{i}", "question": f"say w{i}", "relevant": [f"w{i}"], "answers": f"w{i}"}
                                  for i in range(n)], name="words")


def test_an_interrupted_experiment_continues_where_it_stopped(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "t.sqlite")
    first = Counting(interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_words(6), first, store=store, name="words")
    assert store.experiments.get("words").status == "running" and store.experiments.get("words").done == 3
    again = Counting()
    result = evaluate(_words(6), again, store=store, name="words")
    assert again.calls == ["say w3", "say w4", "say w5"]  # only what was not done
    assert len(result.results) == 6 and result["exact_match"] == 1.0
    assert store.experiments.get("words").status == "done"


def test_an_experiment_killed_mid_way_resumes_on_the_next_run(tmp_path: Path) -> None:
    dataset = tmp_path / "words.jsonl"
    dataset.write_text("".join(json.dumps({"question": f"say w{i}", "relevant": [f"w{i}"]}) + "\n" for i in range(8)))
    store, log = tmp_path / "t.sqlite", tmp_path / "calls.log"
    script = [sys.executable, str(HERE / "_resume_script.py"), str(store), str(dataset), str(log)]
    killed = subprocess.run([*script, "5"], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9
    assert RunStore(store).experiments.get("resumable").done == 4  # the 5th was running when killed
    done = subprocess.run([*script, "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "1.0"]
    calls = log.read_text().splitlines()
    assert calls == [f"say w{i}" for i in range(5)] + [f"say w{i}" for i in range(4, 8)]  # nothing done twice
    traced = RunStore(store).experiments.results("resumable")
    assert all(RunStore(store).get_trace(r.trace_id) for r in traced)


def test_another_config_under_the_same_name_is_refused_unless_restarted(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "t.sqlite")
    evaluate(_words(2), Counting(k=1), store=store, name="words")
    with pytest.raises(EvaluationError, match=r"'words' was started with another config \(k: 1 → 2\).*--restart"):
        evaluate(_words(2), Counting(k=2), store=store, name="words")
    with pytest.raises(EvaluationError, match="another dataset"):
        evaluate(_words(3), Counting(k=1), store=store, name="words")
    replaced = evaluate(_words(3), Counting(k=2), store=store, name="words", restart=True)
    assert len(replaced.results) == 3 and store.experiments.get("words").config["k"] == 2


def test_a_failing_question_is_recorded_and_run_again_next_time(tmp_path: Path) -> None:
    broken = [True]

    def flaky(question: str) -> str:
        if question.endswith("w1") and broken[0]:
            raise RuntimeError("model timed out")
        return question.split()[-1]

    store = RunStore(tmp_path / "t.sqlite")
    result = evaluate(_words(3), flaky, store=store, name="flaky")
    assert [r.error for r in result.errors] == ["RuntimeError: model timed out"]
    with pytest.raises(AssertionError, match="q1: RuntimeError: model timed out"):
        assert_scores(result)
    broken[0] = False
    fixed = evaluate(_words(3), flaky, store=store, name="flaky")
    assert not fixed.errors and fixed["exact_match"] == 1.0


def test_judgements_are_stored_with_their_reasoning(tmp_path: Path) -> None:
    verdicts = ScriptedChatModel(['{"reasoning": "It names the word asked for.", "score": 5}',
                                  '{"reasoning": "The passage says so.", "score": 4}'], cycle=True)
    result = evaluate(_words(2), lambda q: {"answer": q.split()[-1] + " [1]", "documents": [q]},
                      judge=Judge(verdicts), store=tmp_path / "t.sqlite", name="judged")
    first = result.results[0]
    assert first.judgements["relevance"] == {"score": 1.0, "reasoning": "It names the word asked for.",
                                             "model": first.judgements["relevance"]["model"]}
    assert first.judgements["faithfulness"]["score"] == 0.75
    assert result["relevance"] == 1.0 and result["faithfulness"] == 0.75
    assert result.config["judge"]


def test_a_judge_reply_that_does_not_parse_is_kept_without_a_score(tmp_path: Path) -> None:
    result = evaluate(_words(1), lambda q: "w0", judge=Judge(ScriptedChatModel(["not json"], cycle=True)),
                      store=tmp_path / "t.sqlite")
    judged = result.results[0].judgements["relevance"]
    assert judged["score"] is None and "could not be read" in judged["reasoning"]
    assert "relevance" not in result.summary


def test_a_version_3_store_gains_the_experiment_tables_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE experiments; DROP TABLE experiment_results; UPDATE maru_trace_meta SET value = '3';"
                       "INSERT INTO runs (id, trace_id, name, kind, start_time, end_time) VALUES ('r', 'r', 'old', 'chain', 1, 2);")
    conn.commit()
    conn.close()
    store = RunStore(path)
    assert store.get_run("r") is not None and store.experiments.all() == []
    evaluate(_words(1), lambda q: "w0", store=store, name="after-upgrade")
    assert [e.name for e in store.experiments.all()] == ["after-upgrade"]
    version = sqlite3.connect(path).execute("SELECT value FROM maru_trace_meta").fetchone()[0]
    assert version == str(SCHEMA_VERSION) == "4"


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, shown = io.StringIO(), Terminal()
    for stream in (quiet, shown):
        bar = ProgressBar("eval x", 4, 1, stream=stream)
        bar.update(2)
        bar.close()
    assert quiet.getvalue() == ""
    assert "eval x" in shown.getvalue() and "2/4" in shown.getvalue() and shown.getvalue().endswith("\n")
