"""Small slices of the project's real data as evaluation datasets, and knowledge bases built from them.

- :func:`cranfield_beir`: the first Cranfield queries with their judged abstracts plus distractors,
  written as a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).
- :func:`korquad_jsonl`: KorQuAD paragraphs (one ``<id>.txt`` file each) and questions with their
  answer and paragraph, as a JSONL dataset.
- :func:`build_kb`: a KnowledgeBase in a folder from such files (hash embeddings: fast, and BM25
  carries the retrieval; real embeddings where a test says so).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rag"))

from conftest import SHARED_DATA  # noqa: E402


def _cranfield_records(path: Path) -> list[dict[str, str]]:
    """The ``.I``/``.W`` records of a Cranfield file: {"I": number, "W": text}."""
    records: list[dict[str, str]] = []
    current = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            records.append({"I": line[2:].strip(), "W": ""})
            current = None
        elif len(line) == 2 and line.startswith("."):
            current = line[1]
        elif current == "W":
            records[-1]["W"] += " " + line.strip()
    return records


def cranfield_beir(folder: Path, queries: int = 8, docs: int = 60, max_judged: int = 6) -> Path:
    """A BEIR folder of the first ``queries`` Cranfield queries with at most ``max_judged`` judged
    abstracts; the corpus holds those abstracts, then the first ones of the collection, ``docs`` in all."""
    base = SHARED_DATA / "cranfield"
    abstracts = {r["I"]: " ".join(r["W"].split()) for r in _cranfield_records(base / "cran.all.1400")}
    texts = [" ".join(r["W"].split()) for r in _cranfield_records(base / "cran.qry")]
    judged: dict[str, dict[str, int]] = {}
    for line in (base / "cranqrel").read_text().splitlines():
        qid, doc, grade = (line.split() + ["", "", ""])[:3]
        if qid.isdigit() and abstracts.get(doc):
            judged.setdefault(qid, {})[doc] = 5 - int(grade) if 1 <= int(grade) <= 4 else 1
    qrels = dict([(q, ds) for q, ds in judged.items() if len(ds) <= max_judged][:queries])
    chosen = list(dict.fromkeys([d for q in qrels.values() for d in q] + [i for i in abstracts if abstracts[i]]))[:docs]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    _jsonl(folder / "corpus.jsonl", [{"_id": d, "title": "", "text": abstracts[d]} for d in chosen])
    _jsonl(folder / "queries.jsonl", [{"_id": q, "text": texts[int(q) - 1]} for q in qrels])
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, ds in qrels.items() for d, g in ds.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def korquad_jsonl(folder: Path, paragraphs: int = 12) -> tuple[Path, Path]:
    """(corpus folder of ``k<n>.txt`` paragraph files, dataset.jsonl with one question per paragraph)."""
    data = json.loads((SHARED_DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))["data"]
    corpus, rows = folder / "corpus", []
    corpus.mkdir(parents=True, exist_ok=True)
    for article in data:
        for para in article["paragraphs"]:
            if len(rows) == paragraphs:
                break
            pid = f"k{len(rows)}"
            (corpus / f"{pid}.txt").write_text(para["context"], encoding="utf-8")
            qa = para["qas"][0]
            rows.append({"id": qa["id"], "question": qa["question"], "relevant": [pid],
                         "answers": [a["text"] for a in qa["answers"]]})
    _jsonl(folder / "korquad.jsonl", rows)
    return corpus, folder / "korquad.jsonl"


def build_kb(kb_folder: Path, corpus: Path, embeddings: Any = None) -> Any:
    from _indexing_support import HashEmbeddings

    from maru.rag.knowledge import KnowledgeBase

    kb = KnowledgeBase(kb_folder, embeddings=embeddings or HashEmbeddings())
    report = kb.ingest([str(corpus)])
    assert not report.failed, report.failed
    return kb


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
