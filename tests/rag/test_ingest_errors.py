"""``maru ingest`` reports every file it could not load and fails; an empty folder fails too (issue 15.6)."""

from __future__ import annotations

from pathlib import Path

from _indexing_support import HashEmbeddings
from typer.testing import CliRunner

from maru import cli
from maru.rag.knowledge import KnowledgeBase


def test_the_report_lists_failed_files_with_why(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.txt").write_text("Wings stall at high angles of attack.", encoding="utf-8")
    (tmp_path / "docs" / "bad.jsonl").write_text('{"text": "fine"}\n{not json\n', encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb", embeddings=HashEmbeddings())
    report = kb.ingest([tmp_path / "docs"])
    kb.close()
    assert report.sources == [str(tmp_path / "docs" / "ok.txt")]
    [(file, why)] = report.failed
    assert file.endswith("bad.jsonl") and "line 2" in why and "not valid JSON" in why
    kb = KnowledgeBase(tmp_path / "kb", embeddings=HashEmbeddings())
    again = kb.ingest([tmp_path / "docs"])  # a failed file is tried again, the good one is not
    kb.close()
    assert again.sources == [] and len(again.failed) == 1


def test_cli_names_each_failed_file_and_exits_non_zero(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    odd = tmp_path / "slides.pptx"
    odd.write_bytes(b"PK\x03\x04")
    result = CliRunner().invoke(cli.app, ["ingest", str(bad), str(odd), "--store", str(tmp_path / "kb")])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(lines) == 2
    assert any("bad.jsonl" in line and "not valid JSON" in line for line in lines)
    assert any("slides.pptx" in line and "no loader for .pptx" in line for line in lines)
    assert "0 indexed" in result.output and "2 failed" in result.output


def test_cli_says_an_empty_folder_has_nothing_to_ingest(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.docx").write_bytes(b"x")  # not a supported suffix: skipped in folders
    result = CliRunner().invoke(cli.app, ["ingest", str(tmp_path / "empty"), "--store", str(tmp_path / "kb")])
    assert result.exit_code != 0
    assert "no files to ingest" in result.output and "empty" in result.output


def test_a_touched_but_unchanged_file_is_hashed_once(tmp_path: Path, monkeypatch):
    import os

    from maru.rag import ingest

    (tmp_path / "docs").mkdir()
    note = tmp_path / "docs" / "note.txt"
    note.write_text("Boundary layers thicken downstream.", encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb", embeddings=HashEmbeddings())
    kb.ingest([tmp_path / "docs"])
    os.utime(note, ns=(1_000_000_000, 1_000_000_000))
    hashed: list[Path] = []
    real = ingest._sha256
    monkeypatch.setattr(ingest, "_sha256", lambda p: hashed.append(p) or real(p))
    assert kb.ingest([tmp_path / "docs"]).sources == []
    assert kb.ingest([tmp_path / "docs"]).sources == []
    kb.close()
    assert hashed == [note]  # the second run found the new mtime in the manifest
