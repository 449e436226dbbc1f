"""One place for what outlives a run (traces, jobs, chat sessions): $MARU_HOME, else the project's
.maru folder found from any sub-folder, else ~/.maru; never "wherever the command ran"."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru._home import maru_home, project_root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project (pyproject.toml at its top); the current folder is two levels below it."""
    monkeypatch.delenv("MARU_HOME", raising=False)
    for name in ("MARU_TRACE_DB", "MARU_JOBS_DB", "MARU_LOCAL_JOBS", "MARU_HISTORY", "MARU_STORE"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    monkeypatch.chdir(root / "src" / "pkg")
    return root


def test_the_home_is_the_projects_top_from_any_sub_folder(project: Path) -> None:
    assert maru_home() == project / ".maru"


def test_the_nearest_marker_wins(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "src" / ".maru").mkdir()
    assert maru_home() == project / "src" / ".maru"
    assert project_root(project / "src" / "pkg") == project / "src"


def test_maru_home_overrides(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARU_HOME", str(tmp_path / "elsewhere"))
    assert maru_home() == tmp_path / "elsewhere"


def test_outside_any_project_it_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARU_HOME", raising=False)
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    if project_root(bare) is not None:
        pytest.skip(f"{tmp_path} is inside a project")
    assert maru_home() == tmp_path / "user" / ".maru"


def test_stores_default_to_the_home(project: Path) -> None:
    from maru.launch.local import LocalBackend
    from maru.launch.registry import JobRegistry
    from maru.tracing.store import RunStore

    store = RunStore()
    store.close()
    assert store.path == project / ".maru" / "traces.sqlite"
    assert JobRegistry().path == project / ".maru" / "jobs.sqlite"
    assert LocalBackend().root == project / ".maru" / "jobs" / "local"


def test_maru_trace_ls_in_a_sub_folder_sees_the_traces_of_the_project(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maru.tracing
    from maru import cli, runnable

    monkeypatch.chdir(project)
    tracer = maru.tracing.enable()
    try:
        runnable(str.upper).with_config(run_name="shout_at_top").invoke("hi")
        tracer.flush()
    finally:
        maru.tracing.disable()
    monkeypatch.chdir(project / "src" / "pkg")
    result = CliRunner().invoke(cli.app, ["trace", "ls", "--json"])
    assert result.exit_code == 0, result.output
    assert "shout_at_top" in result.stdout
    assert not (project / "src" / "pkg" / ".maru").exists()


def test_chat_sessions_default_to_the_home(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maru import cli
    from maru.cli import chat as cli_chat
    from maru.models import ScriptedChatModel

    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, url: ScriptedChatModel(["hello"]))
    result = CliRunner().invoke(cli.app, ["chat", "--session", "s"], input="hi\n/exit\n")
    assert result.exit_code == 0, result.output
    assert (project / ".maru" / "history.sqlite").exists()


def test_maru_ask_looks_for_the_knowledge_base_in_the_home(project: Path) -> None:
    pytest.importorskip("maru.rag.knowledge")
    from maru import cli

    result = CliRunner().invoke(cli.app, ["ask", "why?"])
    assert result.exit_code == 2
    assert f"no knowledge base at {project / '.maru' / 'kb'}" in " ".join(result.stderr.split())
