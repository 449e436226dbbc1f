"""``maru ingest`` converges: after a SIGKILL at any progress point, files deleted between runs,
or any one lost or damaged file of the knowledge base, the next ingest brings the folder to what a
clean ingest of the same files builds (issue 16.5)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _indexing_support import HashEmbeddings
from _kb_support import state, write_corpus

from maru.rag.knowledge import KnowledgeBase

SCRIPT = Path(__file__).with_name("_kb_support.py")


def ingest(kb_folder: Path, corpus: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(SCRIPT), str(kb_folder), str(corpus)] + ([kill_at] if kill_at else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kill_at", ["scan:65", "embed:320", "bm25:0"])
def test_a_killed_run_and_files_deleted_after_it_converge(tmp_path, kill_at):
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 130)
    kb = tmp_path / "kb"
    killed = ingest(kb, corpus, kill_at)
    assert killed.returncode == -9, killed.stderr
    for path in files[::13]:  # 10 files
        path.unlink()
    done = ingest(kb, corpus)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference"
    assert ingest(reference, corpus).returncode == 0
    expected = state(reference)
    assert expected["sources"] == 120
    assert state(kb) == expected
    again = ingest(kb, corpus)
    assert again.stdout.strip() == "indexed 0 removed 0 failed 0"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict[str, object]]:
    """A clean knowledge base of 30 files (kept as a template) and its state."""
    root = tmp_path_factory.mktemp("built")
    corpus = root / "corpus"
    write_corpus(corpus, 30)
    template = root / "kb"
    kb = KnowledgeBase(template, embeddings=HashEmbeddings())
    kb.ingest([corpus])
    kb.close()
    return corpus, template, state(template)


def _files(kb: Path) -> list[str]:
    return sorted(str(p.relative_to(kb)) for p in kb.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))


def _reingest(kb: Path, corpus: Path) -> None:
    knowledge = KnowledgeBase(kb, embeddings=HashEmbeddings())
    knowledge.ingest([corpus])
    knowledge.retriever(2).invoke("boundary layer")  # answering works on the repaired folder
    knowledge.close()


@pytest.mark.parametrize("part", ["vectors", "records.sqlite", "files.json", "bm25"])
def test_a_lost_part_is_rebuilt_by_the_next_ingest(tmp_path, built, part):
    corpus, template, expected = built
    kb = tmp_path / "kb"
    shutil.copytree(template, kb)
    lost = kb / part
    shutil.rmtree(lost) if lost.is_dir() else lost.unlink()
    _reingest(kb, corpus)
    assert state(kb) == expected


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "zeroed":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # garbled: the middle third overwritten with bytes that are not UTF-8
        third = max(1, len(data) // 3)
        path.write_bytes(data[:third] + bytes([0xFF, 0xFE, 0x80]) * (third // 3 + 1) + data[2 * third :])


def test_any_damaged_file_is_repaired_by_the_next_ingest(tmp_path, built):
    corpus, template, expected = built
    failures = []
    for name in _files(template):
        for how in ("zeroed", "truncated", "garbled"):
            kb = tmp_path / f"{name.replace('/', '_')}-{how}"
            shutil.copytree(template, kb)
            _damage(kb / name, how)
            try:
                _reingest(kb, corpus)
                got = state(kb)
            except Exception as exc:  # noqa: BLE001 - collect every case, then report them all
                failures.append(f"{name} {how}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if got != expected:
                failures.append(f"{name} {how}: not converged ({got['sources']} sources, records_match={got['records_match']}, bm25={got['bm25']})")
    assert not failures, "\n".join(failures)


def test_asking_from_a_damaged_bm25_index_says_to_ingest_again(tmp_path, built):
    from maru.errors import IndexingError

    _, template, _ = built
    kb = tmp_path / "kb"
    shutil.copytree(template, kb)
    _damage(kb / "bm25" / "documents.jsonl", "garbled")
    knowledge = KnowledgeBase(kb, embeddings=HashEmbeddings())
    with pytest.raises(IndexingError, match="maru ingest"):
        knowledge.retriever(2)
    knowledge.close()
