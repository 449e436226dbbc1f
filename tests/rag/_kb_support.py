"""Knowledge-base test helpers: a Cranfield corpus of small files, the state a knowledge base
converged to, and (run as a script) an ingest that SIGKILLs itself at a progress point.

Script use::

    python _kb_support.py KB_FOLDER CORPUS_FOLDER [STAGE:N]

ingests CORPUS_FOLDER into KB_FOLDER with :class:`HashEmbeddings`; with ``STAGE:N`` the process
kills itself (SIGKILL) the first time ``progress(STAGE, done, total)`` reports ``done >= N``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _indexing_support import HashEmbeddings  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402
from maru.rag.knowledge import KnowledgeBase  # noqa: E402


def abstracts() -> list[str]:
    """The Cranfield abstracts (whitespace normalised), in file order."""
    text = (SHARED_DATA / "cranfield" / "cran.all.1400").read_text(encoding="utf-8", errors="replace")
    out = []
    for record in text.split("\n.I ")[1:]:
        body = record.split("\n.W\n", 1)[-1] if "\n.W\n" in record else ""
        if body.strip():
            out.append(" ".join(body.split()))
    return out


def write_corpus(folder: Path, files: int, per_file: int = 3) -> list[Path]:
    """``files`` text files of ``per_file`` abstracts each (paragraphs), a few chunks per file."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = abstracts()
    paths = []
    for i in range(files):
        path = folder / f"cran{i:03d}.txt"
        path.write_text("\n\n".join(texts[i * per_file : (i + 1) * per_file]), encoding="utf-8")
        paths.append(path)
    return paths


def state(kb_folder: Path) -> dict[str, object]:
    """What a converged knowledge base holds: (source, text) of every stored chunk, and whether the
    store, the records and the BM25 index agree."""
    from maru.rag.lexical import BM25Index

    kb = KnowledgeBase(kb_folder, embeddings=HashEmbeddings())
    try:
        ids = sorted(kb.store.ids())
        chunks = sorted((d.metadata["source"], d.text) for d in kb.store.get(ids))
        bm25 = BM25Index.load(kb_folder / "bm25")
        return {
            "chunks": chunks,
            "sources": len({s for s, _ in chunks}),
            "records_match": sorted(kb.records.list_ids()) == ids,
            "bm25": sorted((d.metadata["source"], d.text) for d in bm25.docs) == chunks,
        }
    finally:
        kb.close()


def _main(kb_folder: str, corpus: str, kill_at: str | None) -> None:
    stage, _, at = (kill_at or "::").partition(":")

    def progress(name: str, done: int, total: int) -> None:
        if name == stage and done >= int(at):
            os.kill(os.getpid(), signal.SIGKILL)

    kb = KnowledgeBase(kb_folder, embeddings=HashEmbeddings())
    report = kb.ingest([corpus], progress=progress)
    kb.close()
    print(f"indexed {len(report.sources)} removed {report.files_removed} failed {len(report.failed)}")


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
