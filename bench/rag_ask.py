"""``KnowledgeBase`` question latency: the first question of a fresh knowledge base object, and
every later one, against the floor of the same retrieval with its parts built beforehand.

    .venv/bin/python bench/rag_ask.py                 # 1,400 Cranfield abstracts, 60 questions
    .venv/bin/python bench/rag_ask.py --docs 300 --questions 30

The corpus is the Cranfield collection from ``../shared/data`` (one file per abstract, written
under ``.bench-cache/``); the knowledge base is ingested once there and reused by later runs (a
re-ingest of unchanged files only compares sizes and mtimes). The questions are Cranfield's own.

Per question, in rotation so that drift on a shared machine hits all three alike:

- ``ask`` with a scripted chat model (the answer path minus a real model's time);
- ``ask`` without a model (the extractive answer: it also embeds the candidate sentences);
- the floor: the knowledge base's hybrid retriever built once, then only ``invoke``d.

The figure that matters is ``ask_llm / floor`` for the later questions: what answering costs on
top of the retrieval itself. Ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import rag_corpus  # noqa: E402

K = 4


def corpus(n_docs: int) -> Path:
    """One text file per Cranfield abstract (the first ``n_docs``), written once."""
    folder = rag_corpus.CACHE / f"kb-ask-{n_docs}" / "docs"
    docs = rag_corpus._cranfield_docs()[:n_docs]
    if len(list(folder.glob("*.txt"))) != len(docs):
        folder.mkdir(parents=True, exist_ok=True)
        for _, _, key, text in docs:
            (folder / f"{key}.txt").write_text(text, encoding="utf-8")
    return folder


def _ms(fn: Any, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - start) * 1000


def bench(n_docs: int, n_questions: int, rounds: int) -> dict[str, Any]:
    from maru.models.scripted import ScriptedChatModel
    from maru.rag.embeddings import LocalEmbeddings
    from maru.rag.knowledge import KnowledgeBase

    docs = corpus(n_docs)
    path = docs.parent / "kb"
    embeddings = LocalEmbeddings()
    kb = KnowledgeBase(path, embeddings=embeddings)
    start = time.perf_counter()
    report = kb.ingest([docs])
    print(f"ingest: {report.files_seen} files, {len(report.sources)} indexed, {kb.store.count()} chunks "
          f"in {time.perf_counter() - start:.1f} s")
    kb.close()
    questions = rag_corpus._cranfield_queries()[: n_questions + 1]
    model = ScriptedChatModel(["An answer citing [1]."], cycle=True)
    embeddings.embed_query("warm up")

    first: list[float] = []
    llm: list[float] = []
    extractive: list[float] = []
    floor: list[float] = []
    for _ in range(rounds):
        kb = KnowledgeBase(path, embeddings=embeddings)  # a fresh object: nothing loaded yet
        first.append(_ms(kb.ask, questions[0], k=K, model=model))
        retriever = kb.retriever(K)
        for q in questions[1:]:
            llm.append(_ms(kb.ask, q, k=K, model=model))
            extractive.append(_ms(kb.ask, q, k=K))
            floor.append(_ms(retriever.invoke, q))
        kb.close()

    def p50(xs: list[float]) -> float:
        return statistics.median(xs)

    figures = {
        "docs": n_docs,
        "questions": n_questions,
        "rounds": rounds,
        "first_question_ms": p50(first),
        "later_ask_llm_p50_ms": p50(llm),
        "later_ask_extractive_p50_ms": p50(extractive),
        "later_retrieve_floor_p50_ms": p50(floor),
        "ask_llm_over_floor": p50(llm) / p50(floor),
    }
    print(f"\n{n_docs} abstracts, {n_questions} later questions x {rounds} rounds, k={K} (p50, ms)")
    print(f"  first question (fresh KnowledgeBase)   {figures['first_question_ms']:8.1f}")
    print(f"  later questions, ask with a model      {figures['later_ask_llm_p50_ms']:8.1f}")
    print(f"  later questions, ask extractive        {figures['later_ask_extractive_p50_ms']:8.1f}")
    print(f"  floor: pre-built retriever.invoke      {figures['later_retrieve_floor_p50_ms']:8.1f}")
    print(f"  ask with a model / floor               {figures['ask_llm_over_floor']:8.2f}x")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1400)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(bench(args.docs, args.questions, args.rounds)))


if __name__ == "__main__":
    main()
