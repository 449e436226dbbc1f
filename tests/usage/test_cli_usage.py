"""``maru usage REPORT.json``: the report of a tracked run; clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru import cli
from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.usage import UsageTracker, track

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201 - typer's Result
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "120"})


@pytest.fixture
def report(tmp_path: Path) -> Path:
    mini = ScriptedChatModel([AIMessage("ok", usage=Usage(1200, 300, 200))], cycle=True, model="gpt-4o-mini")
    gemini = ScriptedChatModel([AIMessage("ok", usage=Usage(5000, 800))], cycle=True, model="gemini-2.5-flash")
    with track(name="nightly-eval") as t:
        mini.batch(["a", "b", "c"])
        gemini.invoke("d")
    t.record("gpt-4o-mini", Usage(1200, 300), cost=0.0, cached=True)  # as the response cache records a hit
    return t.save(tmp_path / "usage.json")


def test_usage_prints_the_table(report: Path) -> None:
    result = invoke("usage", str(report))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nightly-eval" in out
    for expected in ("gpt-4o-mini", "gemini-2.5-flash", "total", "3,600", "8,600", "5 calls", "1 from cache"):
        assert expected in out, expected
    tracker = UsageTracker.load(report)
    assert f"${tracker.total_cost:,.6f}" in out or f"${tracker.total_cost:,.4f}" in out


def test_usage_json(report: Path) -> None:
    result = invoke("usage", str(report), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["requests"] == 4 and data["totals"]["cache_hits"] == 1
    assert data["models"]["gemini-2.5-flash"]["input_tokens"] == 5000


def test_usage_is_listed_in_help() -> None:
    result = invoke("--help")
    assert "usage" in result.output


def test_missing_report(tmp_path: Path) -> None:
    result = invoke("usage", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "not found" in result.output and "nope.json" in result.output
    assert "t.save" in result.output  # says how to make one
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{oops", "not valid JSON"),
        ('{"models": []}', '"models" object'),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_corrupt_report(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = invoke("usage", str(path))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_folder_instead_of_report(tmp_path: Path) -> None:
    result = invoke("usage", str(tmp_path))
    assert result.exit_code == 2
    assert "folder" in result.output
