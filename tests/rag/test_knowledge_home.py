"""``KnowledgeBase()`` without a path lives in maru's home, where ``maru ingest``/``ask`` look."""

from __future__ import annotations

from maru.rag.knowledge import KnowledgeBase


def test_default_folder_is_in_maru_home_from_any_sub_folder(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.delenv("MARU_HOME", raising=False)
    monkeypatch.chdir(deep)
    assert KnowledgeBase().path == tmp_path / ".maru" / "kb"
