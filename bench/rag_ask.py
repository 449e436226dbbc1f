"""``KnowledgeBase`` question latency: the first question of a fresh knowledge base object, and
every later one, against the floor of the same retrieval with its parts built beforehand.

    .venv/bin/python bench/rag_ask.py                 # 1,400 Cranfield abstracts, 60 questions
    .venv/bin/python bench/rag_ask.py --corpus xquad  # 240 XQuAD-en paragraphs
    .venv/bin/python bench/rag_ask.py --docs 300 --questions 30

The corpus comes from ``../shared/data``, one file per document written under ``.bench-cache/``;
the knowledge base is ingested once there and reused by later runs (a re-ingest of unchanged files
only compares sizes and mtimes). The questions are the corpus's own. Cranfield is mostly lower
case, which the extractive answer takes for sentence fragments: it quotes something in few answers
there (the share is printed), so that figure is mostly retrieval; XQuAD's paragraphs are ordinary
prose, where embedding the candidate sentences dominates the extractive answer.

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


def corpus(name: str, n_docs: int) -> tuple[Path, list[str]]:
    """One text file per document (the first ``n_docs``), written once, and the questions."""
    if name == "xquad":
        docs, questions = rag_corpus._squad("xquad", rag_corpus.DATA / "xquad_en" / "xquad.en.json", "en")
        folder = rag_corpus.CACHE / f"kb-ask-xquad-{n_docs}" / "docs"
    else:
        docs, questions = rag_corpus._cranfield_docs(), rag_corpus._cranfield_queries()
        folder = rag_corpus.CACHE / f"kb-ask-{n_docs}" / "docs"
    docs = docs[:n_docs]
    if len(list(folder.glob("*.txt"))) != len(docs):
        folder.mkdir(parents=True, exist_ok=True)
        for _, _, key, text in docs:
            (folder / f"{key}.txt").write_text(text, encoding="utf-8")
    return folder, questions


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Milliseconds ``fn(*args, **kwargs)`` took, and what it returned."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - start) * 1000, out


def bench(name: str, n_docs: int, n_questions: int, rounds: int) -> dict[str, Any]:
    from maru.models.scripted import ScriptedChatModel
    from maru.rag.embeddings import LocalEmbeddings
    from maru.rag.knowledge import KnowledgeBase

    docs, questions = corpus(name, n_docs)
    questions = questions[: n_questions + 1]
    path = docs.parent / "kb"
    embeddings = LocalEmbeddings()
    kb = KnowledgeBase(path, embeddings=embeddings)
    start = time.perf_counter()
    report = kb.ingest([docs])
    print(f"ingest: {report.files_seen} files, {len(report.sources)} indexed, {kb.store.count()} chunks "
          f"in {time.perf_counter() - start:.1f} s")
    kb.close()
    model = ScriptedChatModel(["An answer citing [1]."], cycle=True)
    embeddings.embed_query("warm up")

    first: list[float] = []
    llm: list[float] = []
    extractive: list[float] = []
    floor: list[float] = []
    quoted = 0
    for _ in range(rounds):
        kb = KnowledgeBase(path, embeddings=embeddings)  # a fresh object: nothing loaded yet
        first.append(_timed(kb.ask, questions[0], k=K, model=model)[0])
        retriever = kb.retriever(K)
        for q in questions[1:]:
            llm.append(_timed(kb.ask, q, k=K, model=model)[0])
            ms, answer = _timed(kb.ask, q, k=K)
            extractive.append(ms)
            quoted += answer.text != "No passage matched the question."
            floor.append(_timed(retriever.invoke, q)[0])
        kb.close()

    def p50(xs: list[float]) -> float:
        return statistics.median(xs)

    figures = {
        "corpus": name,
        "docs": report.files_seen,
        "questions": n_questions,
        "rounds": rounds,
        "first_question_ms": p50(first),
        "later_ask_llm_p50_ms": p50(llm),
        "later_ask_extractive_p50_ms": p50(extractive),
        "later_retrieve_floor_p50_ms": p50(floor),
        "ask_llm_over_floor": p50(llm) / p50(floor),
        "extractive_quoted_share": quoted / len(extractive),
    }
    print(f"\n{name}: {report.files_seen} documents, {n_questions} later questions x {rounds} rounds, k={K} (p50, ms)")
    print(f"  first question (fresh KnowledgeBase)   {figures['first_question_ms']:8.1f}")
    print(f"  later questions, ask with a model      {figures['later_ask_llm_p50_ms']:8.1f}")
    print(f"  later questions, ask extractive        {figures['later_ask_extractive_p50_ms']:8.1f}"
          f"   (quotes something in {figures['extractive_quoted_share']:.0%} of answers)")
    print(f"  floor: pre-built retriever.invoke      {figures['later_retrieve_floor_p50_ms']:8.1f}")
    print(f"  ask with a model / floor               {figures['ask_llm_over_floor']:8.2f}x")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=["cranfield", "xquad"], default="cranfield")
    ap.add_argument("--docs", type=int, default=1400)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(bench(args.corpus, args.docs, args.questions, args.rounds)))


if __name__ == "__main__":
    main()
