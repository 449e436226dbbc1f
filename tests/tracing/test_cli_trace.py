"""``maru trace ls`` / ``show``: the table, the tree, filters, id prefixes and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru import cli
from maru.tracing.store import RunStore

from .traces import freeze_now, make_trace

runner = CliRunner()
NOW = time.time()


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_now(monkeypatch, NOW)


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MARU_TRACE_DB", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "traces.sqlite"
    store = RunStore(path)
    store.write(make_trace("7f3a01-1", "qa-chain", start=NOW - 3 * 86400, tags=("prod",)))
    store.write(make_trace("7f3a01-2", "summarise", start=NOW - 600, child_error="ValueError: bad json"))
    store.write(make_trace("7f3a01-3", "qa-chain [v2]", start=NOW - 60, error="TimeoutError: model took too long"))
    store.close()
    return path


def trace(*args: str) -> object:
    return runner.invoke(cli.app, ["trace", *args])


# ----------------------------------------------------------------------------- ls
def test_ls_shows_a_table_of_traces_newest_first(db: Path) -> None:
    result = trace("ls", "--db", str(db))
    assert result.exit_code == 0, result.output
    out = result.output
    for header in ("started", "name", "latency", "tokens", "cost", "status", "trace id"):
        assert header in out
    lines = out.splitlines()
    rows = [line for line in lines if "7f3a01-" in line and "ms" in line]
    assert len(rows) == 3
    assert "qa-chain [v2]" in rows[0] and "error" in rows[0] and "7f3a01-3" in rows[0]  # no markup eaten
    assert "summarise" in rows[1] and "ok, 1 failed" in rows[1]
    assert "qa-chain" in rows[2] and " ok " in rows[2] and "failed" not in rows[2]
    assert "810 ms" in rows[2] and "150" in rows[2] and "$0.000036" in rows[2]
    assert "3 of 3 traces" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--name", "QA"], ["7f3a01-3", "7f3a01-1"]),
        (["--tag", "prod"], ["7f3a01-1"]),
        (["--errors"], ["7f3a01-3", "7f3a01-2"]),
        (["--since", "1h"], ["7f3a01-3", "7f3a01-2"]),
        (["--since", "1h", "--until", "5m"], ["7f3a01-2"]),
        (["--limit", "1"], ["7f3a01-3"]),
    ],
)
def test_ls_filters(db: Path, args: list[str], expected: list[str]) -> None:
    result = trace("ls", "--db", str(db), "--json", *args)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["trace_id"] for line in result.output.splitlines()] == expected


def test_ls_reads_the_store_named_by_the_environment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARU_TRACE_DB", str(db))
    result = trace("ls")
    assert result.exit_code == 0, result.output
    assert "summarise" in result.output


def test_ls_with_nothing_to_show(db: Path, tmp_path: Path) -> None:
    result = trace("ls", "--db", str(db), "--name", "no-such-chain")
    assert result.exit_code == 0
    assert "No traces match" in result.output
    RunStore(tmp_path / "empty.sqlite").close()
    result = trace("ls", "--db", str(tmp_path / "empty.sqlite"))
    assert result.exit_code == 0
    assert "No traces yet" in result.output


def test_a_missing_store_exits_2_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "traces.sqlite"
    for command in (["ls"], ["show", "abc"], ["ui"]):
        result = trace(*command, "--db", str(missing))
        assert result.exit_code == 2, (command, result.output)
        assert "no trace store at" in result.output and str(missing) in result.output
    assert not missing.parent.exists()


def test_a_corrupt_store_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "traces.sqlite"
    bad.write_bytes(b"\x00garbage" * 2000)
    for command in (["ls"], ["show", "abc"]):
        result = trace(*command, "--db", str(bad))
        assert result.exit_code == 2
        assert "corrupt" in result.output and str(bad) in result.output


def test_a_bad_time_exits_2(db: Path) -> None:
    result = trace("ls", "--db", str(db), "--since", "last tuesday")
    assert result.exit_code == 2
    assert "--since" in result.output and "duration back from now" in result.output


# ----------------------------------------------------------------------------- show
def test_show_prints_the_run_tree(db: Path) -> None:
    result = trace("show", "7f3a01-2", "--db", str(db))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "trace 7f3a01-2" in out and "5 runs" in out and "1 failed" in out
    lines = out.splitlines()
    # Every run, nested: the parser under "format", under the root.
    order = ["summarise", "ChatPromptTemplate", "OpenAIChat", "format", "parse"]
    positions = [next(i for i, line in enumerate(lines) if f"{name}  " in line) for name in order]
    assert positions == sorted(positions)
    indent = {name: lines[p].index(name) for name, p in zip(order, positions, strict=True)}
    assert indent["summarise"] < indent["OpenAIChat"] == indent["format"] < indent["parse"]
    llm_line = lines[positions[2]]
    assert "llm" in llm_line and "800 ms" in llm_line and "150 tok" in llm_line and "$0.000036" in llm_line
    assert "gpt-4o-mini" in llm_line
    assert 'in  {"question": "서울 날씨는?"}' in out
    assert "out 맑음, 21°C" in out
    assert "✗ ValueError: bad json" in out


def test_show_accepts_a_unique_prefix(db: Path) -> None:
    result = trace("show", "7f3a01-3", "--db", str(db))
    assert result.exit_code == 0
    assert "✗ TimeoutError: model took too long" in result.output
    store = RunStore(db)
    store.write(make_trace("c0ffee99", "other", start=NOW))
    result = trace("show", "c0f", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "trace c0ffee99" in result.output


def test_show_refuses_an_ambiguous_or_unknown_id(db: Path) -> None:
    result = trace("show", "7f3a", "--db", str(db))
    assert result.exit_code == 2
    assert "several trace ids" in result.output and "7f3a01-1" in result.output
    result = trace("show", "zzz", "--db", str(db))
    assert result.exit_code == 2
    assert "no trace 'zzz'" in result.output and "maru trace ls" in result.output


def test_show_json(db: Path) -> None:
    result = trace("show", "7f3a01-1", "--db", str(db), "--json")
    assert result.exit_code == 0
    runs = json.loads(result.output)
    assert [r["name"] for r in runs][0] == "qa-chain"
    assert len(runs) == 5 and all(r["trace_id"] == "7f3a01-1" for r in runs)


def test_trace_help_lists_its_commands() -> None:
    result = runner.invoke(cli.app, ["trace", "--help"])
    assert result.exit_code == 0
    for command in ("ls", "show", "ui"):
        assert command in result.output
    assert "trace" in runner.invoke(cli.app, ["--help"]).output


def test_importing_the_cli_or_maru_loads_no_tracing_sinks() -> None:
    code = (
        "import sys, maru, maru.cli; "
        "print(sorted(m for m in ('maru.tracing.store', 'maru.tracing.viewer', 'maru.tracing.otel', "
        "'maru.tracing.jsonl', 'fastapi', 'opentelemetry', 'sqlite3') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MARU_TRACING"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_show_prints_where_a_failed_trace_failed(tmp_path: Path) -> None:
    """The tree says which step failed; below it, that step's (redacted) stack trace."""
    from maru import runnable
    from maru.tracing import tracing

    def parse_price(text: str) -> float:
        return float(text)  # "12 dollars" does not parse

    path = tmp_path / "traces.sqlite"
    store = RunStore(path)
    chain = runnable(str.strip) | parse_price
    with tracing([store]), pytest.raises(ValueError):
        chain.invoke(" 12 dollars ")
    store.close()
    trace_id = RunStore(path).list_traces()[0].trace_id
    result = trace("show", trace_id, "--db", str(path))
    assert result.exit_code == 0, result.output
    assert "where it failed: parse_price" in result.output
    assert "Traceback (most recent call last)" in result.output
    assert "return float(text)" in result.output
