"""Two or more pipeline configs scored with ``maru.eval`` on real data, side by side.

- Cranfield (1,400 abstracts, 225 queries, written as a BEIR folder): the knowledge base's hybrid
  retrieval against its own BM25 and dense (MiniLM) retrievers alone.
- KorQuAD (first N paragraphs, one question each): extractive answers from k=1 vs k=4 passages.
- XQuAD (first N paragraphs): extractive vs the local model writing the answer, judged by the
  local model (a few questions: the 135M model takes seconds per call).

Every experiment lands in one trace store (``--out``/traces.sqlite): ``maru trace ui --db …`` shows
them side by side. Ends with one JSON line of mean scores per experiment.

    python bench/eval_configs.py [--out DIR] [--korquad 150] [--xquad 40] [--llm 6] [--skip cranfield,…] [--restart]

An experiment stopped part-way (a timeout, Ctrl-C) continues on the next run unless --restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "eval"))

from _data import cranfield_beir  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402
from maru.eval import Dataset, evaluate, load_dataset  # noqa: E402
from maru.rag.knowledge import KnowledgeBase  # noqa: E402
from maru.tracing.store import RunStore  # noqa: E402


def squad_slice(path: Path, folder: Path, paragraphs: int) -> Dataset:
    """The first ``paragraphs`` paragraphs as ``p<n>.txt`` files, one question each."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            if len(rows) < paragraphs:
                pid = f"p{len(rows)}"
                (folder / f"{pid}.txt").write_text(para["context"], encoding="utf-8")
                qa = para["qas"][0]
                rows.append({"id": qa["id"], "question": qa["question"], "relevant": [pid],
                             "answers": [a["text"] for a in qa["answers"]]})
    return Dataset.from_examples(rows, name=path.parent.name)


def knowledge_base(folder: Path, corpus: Path) -> KnowledgeBase:
    started = time.perf_counter()
    kb = KnowledgeBase(folder)
    kb.ingest([str(corpus)])
    print(f"{corpus.name}: ingested in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return kb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/maru-eval-bench"))
    parser.add_argument("--korquad", type=int, default=150)
    parser.add_argument("--xquad", type=int, default=40)
    parser.add_argument("--llm", type=int, default=6)
    parser.add_argument("--restart", action="store_true", help="Start every experiment again (default: continue).")
    parser.add_argument("--skip", default="", help="Comma-separated parts to leave out: cranfield, korquad, xquad.")
    args = parser.parse_args()
    out: Path = args.out
    store = RunStore(out / "traces.sqlite")
    figures: dict[str, dict[str, float]] = {}

    def run(name: str, data: Dataset, target: object, **options: object) -> None:
        started = time.perf_counter()
        result = evaluate(data, target, name=name, store=store, restart=args.restart, progress=False, **options)
        figures[name] = {k: round(v, 3) for k, v in result.summary.items()}
        figures[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(name, figures[name], file=sys.stderr)

    skip = set(args.skip.split(","))
    if "cranfield" not in skip:
        cranfield(out, run)
    if "korquad" not in skip:
        korquad(out, run, args.korquad)
    if "xquad" not in skip:
        xquad(out, run, args.xquad, args.llm)
    print(json.dumps({"store": str(store.path), "experiments": figures}))


def cranfield(out: Path, run: Any) -> None:
    """The whole collection and every judged query: hybrid against BM25 and dense alone."""
    cran = load_dataset(cranfield_beir(out / "cranfield", queries=225, docs=1400, max_judged=1400))
    cran.write_corpus(out / "cranfield-files")
    kb = knowledge_base(out / "kb-cranfield", out / "cranfield-files")
    from maru.rag.lexical import BM25Index, BM25Retriever

    run("cranfield-hybrid", cran, kb)
    run("cranfield-bm25", cran, BM25Retriever(BM25Index.load(kb.path / "bm25"), k=10))
    run("cranfield-dense", cran, kb.store.as_retriever(k=10))
    kb.close()


def korquad(out: Path, run: Any, paragraphs: int) -> None:
    """Extractive answers from the top passage (one sentence) against the top 4 (three sentences)."""
    korquad = squad_slice(SHARED_DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json", out / "korquad-files", paragraphs)
    kb = knowledge_base(out / "kb-korquad", out / "korquad-files")
    run("korquad-k1-1sent", korquad, kb.evaluation_pipeline(k=1, sentences=1))
    run("korquad-k4-3sent", korquad, kb.evaluation_pipeline(k=4, sentences=3))
    kb.close()


def xquad(out: Path, run: Any, paragraphs: int, llm: int) -> None:
    """Extractive against the local model writing the answer, both judged by the local model."""
    xquad = squad_slice(SHARED_DATA / "xquad_en" / "xquad.en.json", out / "xquad-files", paragraphs)
    kb = knowledge_base(out / "kb-xquad", out / "xquad-files")
    few = Dataset.from_examples(list(xquad.examples[:llm]), name="xquad")
    run("xquad-extractive", few, kb.evaluation_pipeline(k=2, sentences=1), judge=True)
    from maru.models import LlamaCppChat

    run("xquad-local-model", few, kb.evaluation_pipeline(k=2, model=LlamaCppChat(max_tokens=96)), judge=True)
    kb.close()


if __name__ == "__main__":
    main()
