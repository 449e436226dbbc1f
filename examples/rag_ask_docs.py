"""Ask the project's own documentation: ingest ``docs/`` and the README, then answer questions offline.

    python examples/rag_ask_docs.py ["your question" ...]

Ingests twice (the second run finds every file unchanged and embeds nothing), then answers with
hybrid BM25 + dense retrieval and a model that writes the answer, citing the passages: the
bundled local model, or the endpoint ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` name. The steps are explained in
``maru/demo/ask_docs.py``, which ``maru demo`` runs on the README alone. This is the same code as
``maru ingest docs --store DIR`` and ``maru ask "..." --store DIR``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from maru.demo.ask_docs import run_demo

ROOT = Path(__file__).resolve().parents[1]


def sources() -> list[Path]:
    return [p for p in (ROOT / "docs", ROOT / "README.md") if p.exists()]


def main() -> None:
    from maru.models import default_chat_model, describe_model

    model = default_chat_model(max_tokens=160)
    print(f"model: {describe_model(model)}")
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(Path(tmp) / "kb", sources(), sys.argv[1:] or None, model)
    first, second = result["first"], result["second"]
    print(f"ingested {first.files_seen} files → {first.chunks} chunks in {result['first_s']:.1f} s; "
          f"re-run: {second.files_unchanged} unchanged, {second.chunks} embedded, {result['second_s']:.2f} s")
    for answer in result["answers"]:
        print(f"\nQ: {answer.question}\nA ({answer.mode}): {answer.text}")
        for c in answer.citations:
            print(f"   [{c.n}] {Path(c.source).relative_to(ROOT) if c.source.startswith(str(ROOT)) else c.source}")


if __name__ == "__main__":
    main()
