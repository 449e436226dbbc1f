"""SQLHistory creates the folder of its SQLite file, as every SQLite-backed store does (issue 15.11)."""

from __future__ import annotations

from pathlib import Path

from maru.history.stores import SQLHistory
from maru.messages import HumanMessage


def test_sql_history_creates_missing_folders(tmp_path: Path):
    path = tmp_path / "a" / "b" / "history.sqlite"
    history = SQLHistory(f"sqlite:///{path}")
    history.append("s", [HumanMessage("hi")])
    assert [m.content for m in history.get("s")] == ["hi"]
    history.close()
    assert path.is_file()
