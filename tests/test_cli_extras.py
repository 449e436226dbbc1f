"""A command whose optional extra is missing says which one to install, in one line, and exits 2.

A base ``pip install maru`` is simulated in a real process: the extra's modules are set to
``None`` in ``sys.modules`` before ``maru`` runs, so importing any of them fails as it would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maru.cli import app
from maru.cli import demo as cli_demo
from maru.cli._extras import EXTRA_MODULES, needs_extra

ROOT = Path(__file__).resolve().parents[1]

WITHOUT = (
    "import sys; [sys.modules.__setitem__(m, None) for m in sys.argv[1].split(',')]; "
    "sys.argv = ['maru', *sys.argv[2:]]; from maru.cli import main; main()"
)


def maru_without(extra: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``maru ARGS`` in a process where every module of ``extra`` is missing."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, ",".join(sorted(EXTRA_MODULES[extra])), *args],
        capture_output=True, text=True, cwd=cwd, env={**environ, **env}, stdin=subprocess.DEVNULL, timeout=120,
    )


def _metrics_run(tmp_path: Path) -> str:
    (tmp_path / "metrics.csv").write_text("step,loss\n1,0.5\n2,0.25\n", encoding="utf-8")
    return str(tmp_path)


def _knowledge_base(tmp_path: Path) -> str:
    (tmp_path / "kb" / "vectors").mkdir(parents=True)
    return str(tmp_path / "kb")


@pytest.mark.parametrize(
    ("extra", "args", "what"),
    [
        ("rag", lambda tmp: ["ingest", str(ROOT / "docs"), "--store", str(tmp / "kb")], "maru ingest"),
        ("rag", lambda tmp: ["ask", "why?", "--store", _knowledge_base(tmp)], "maru ask"),
        ("sql", lambda tmp: ["sql", "--db", "sqlite://", "--query", "select 1"], "maru sql"),
        ("serve", lambda tmp: ["serve", "no_such_module:thing"], "maru serve"),
        ("trace", lambda tmp: ["trace", "ui", "--db", str(tmp / "traces.sqlite")], "maru trace ui"),
        ("train", lambda tmp: ["train", "plot", _metrics_run(tmp)], "maru train plot"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(extra: str, args: Any, what: str, tmp_path: Path) -> None:
    proc = maru_without(extra, *args(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f'error: {what} needs the "{extra}" extra (no module ')
    assert lines[0].endswith(f'pip install "maru[{extra}]"')


def test_chat_without_the_openai_sdk_names_the_extra(tmp_path: Path) -> None:
    proc = maru_without("openai", "chat", cwd=tmp_path, OPENAI_API_KEY="sk-test")
    assert proc.returncode == 2
    assert 'a chat model needs the "openai" extra' in proc.stderr
    assert 'pip install "maru[openai]"' in proc.stderr and "Traceback" not in proc.stderr


def test_other_import_errors_are_not_blamed_on_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"), needs_extra("sql", "maru sql"):
        import no_such_module_xyz  # type: ignore[import-not-found]  # noqa: F401


def test_the_table_matches_the_extras_of_pyproject() -> None:
    """Every installed module the table lists comes from a distribution that extra requires."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"]
    distributions = packages_distributions()

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    for extra, modules in EXTRA_MODULES.items():
        required = {normal(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in extras[extra]}
        for module in modules:
            providers = {normal(d) for d in distributions.get(module, [])}
            assert not providers or providers & required, f"{module} is not installed by maru[{extra}]"


def test_demo_skips_a_section_whose_extra_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def needs_bm25s(console: Any) -> None:
        raise ModuleNotFoundError("No module named 'bm25s'", name="bm25s")

    def plain(console: Any) -> None:
        console.print("plain section ran")

    monkeypatch.setattr(cli_demo, "DEMO_SECTIONS", [
        cli_demo.DemoSection("Needs rag", "skipped without it", needs_bm25s, extra="rag"),
        cli_demo.DemoSection("Plain", "runs", plain),
    ])
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert 'section skipped: it needs the "rag" extra' in result.stdout
    assert 'pip install "maru[rag]"' in result.stdout
    assert "plain section ran" in result.stdout
    assert "2 section(s), 1 skipped for a missing extra" in result.stdout


def test_demo_counts_an_unrelated_missing_module_as_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(console: Any) -> None:
        raise ModuleNotFoundError("No module named 'not_an_extra'", name="not_an_extra")

    monkeypatch.setattr(cli_demo, "DEMO_SECTIONS", [cli_demo.DemoSection("Broken", "fails", broken, extra="rag")])
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1
    assert "section failed: ModuleNotFoundError" in result.stdout
