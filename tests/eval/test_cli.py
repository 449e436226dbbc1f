"""``maru eval``: run a KorQuAD slice against a knowledge base built by ``maru ingest`` (the served
pipeline, as ``maru ask`` builds it), list, show, compare; user errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru import cli

from ._data import korquad_jsonl


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """In process, with hash embeddings standing in for MiniLM (the CLI's wiring is under test here;
    the model's quality is measured elsewhere), and no endpoint or store from the environment."""
    from _indexing_support import HashEmbeddings

    monkeypatch.setattr("maru.rag.embeddings.LocalEmbeddings", HashEmbeddings)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_TRACE_DB", "MARU_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARU_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_run_two_configs_then_list_show_and_compare(runner: CliRunner, tmp_path: Path) -> None:
    corpus, dataset = korquad_jsonl(tmp_path / "kq", paragraphs=6)
    kb, db = str(tmp_path / "kb"), str(tmp_path / "traces.sqlite")
    assert runner.invoke(cli.app, ["ingest", str(corpus), "--store", kb]).exit_code == 0
    config = tmp_path / "one.toml"
    config.write_text("k = 1\nsentences = 1\nextractive = true\n")
    for name, options in (("k1", ["--config", str(config)]), ("k4", ["--k", "4", "--extractive"])):
        run = runner.invoke(cli.app, ["eval", "run", "--dataset", str(dataset), "--kb", kb, "--db", db, "--name", name,
                                      *options, "--min", "hit@1=0.5"])
        assert run.exit_code == 0, run.output
        assert f"experiment {name}: 6 questions of korquad" in run.stdout and "ndcg@10" in run.stdout
    listed = runner.invoke(cli.app, ["eval", "list", "--db", db])
    assert listed.exit_code == 0 and "k1" in listed.stdout and "6/6" in listed.stdout
    shown = runner.invoke(cli.app, ["eval", "show", "k1", "--db", db, "--json"])
    data = json.loads(shown.stdout)
    assert data["config"]["k"] == 1 and data["config"]["writer"] == "extractive (1 sentences)"
    assert len(data["results"]) == 6 and all(r["trace_id"] for r in data["results"])
    compared = runner.invoke(cli.app, ["eval", "compare", "k1", "k4", "--db", db, "--all"])
    assert compared.exit_code == 0, compared.output
    assert "Δ" in compared.stdout and "trace k1" in compared.stdout
    # Run again: nothing left to do; a floor that does not hold fails the command (for CI).
    low = runner.invoke(cli.app, ["eval", "run", "--dataset", str(dataset), "--kb", kb, "--db", db, "--name", "k4",
                                  "--k", "4", "--extractive", "--min", "f1=0.99"])
    assert low.exit_code == 1 and "f1 0." in low.output and "< 0.99" in low.output
    changed = runner.invoke(cli.app, ["eval", "run", "--dataset", str(dataset), "--kb", kb, "--db", db, "--name", "k4",
                                      "--k", "2", "--extractive"])
    assert changed.exit_code == 1 and "another config (k: 4 → 2" in changed.output


def test_user_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?", "answers": "x"}\n{"question": "no answer"}\n')
    cases = [
        (["eval", "run", "--dataset", str(bad), "--kb", str(tmp_path / "kb")], 1, "bad.jsonl line 2 has neither"),
        (["eval", "run", "--dataset", str(tmp_path / "none.jsonl")], 1, "no dataset at"),
        (["eval", "show", "nope", "--db", str(tmp_path / "missing.sqlite")], 2, "no trace store at"),
        (["eval", "run", "--dataset", str(bad), "--min", "recall@5"], 2, "give METRIC=NUMBER"),
    ]
    for args, code, message in cases:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    config = tmp_path / "c.toml"
    config.write_text("k = 'four'\n")
    result = runner.invoke(cli.app, ["eval", "run", "--dataset", str(bad), "--config", str(config)])
    assert result.exit_code == 2 and "k must be a whole number, got 'four'" in result.output
