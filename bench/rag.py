"""RAG benchmarks, with the peers side by side in one run.

    .venv/bin/python bench/rag.py                     # all sections
    .venv/bin/python bench/rag.py --only ingest,query # a subset: ingest, query, quality

1. ingest: the full maru ingestion path — ``index()`` into ``LocalStore`` with ``LocalEmbeddings`` and
   a SQLite record manager — against raw sentence-transformers ``encode`` of the same texts in the
   same batches (``index()`` embeds each batch in one ``encode`` call; goal ≥ 0.95× its
   throughput); then re-indexing the unchanged corpus (goal ≥ 50× faster than the first). Also
   shown: raw ``encode`` of all texts in one call. Fewer, larger calls are faster for anyone (the
   model sorts each call's texts by length, so a larger call pads less), which is why the
   comparison is made batch for batch.
2. query: p50/p95 latency and recall@10 against exact search on 100k chunks of real text embeddings
   (``bench/rag_corpus.py``; held-out real questions as queries): ``LocalStore`` (the embedded
   default), faiss ``IndexFlatIP`` (exact, the speed reference) and LangChain's
   ``InMemoryVectorStore``. Goal: LocalStore p50 ≤ 2 ms at recall ≥ 0.95.
3. quality: ``bench/retrieval_quality.py`` (nDCG@10, recall@1/@10 for dense, BM25 and hybrid on
   Cranfield, XQuAD and KorQuAD, with LangChain's BM25Retriever + vector store + EnsembleRetriever).

Ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import rag_corpus  # noqa: E402

K = 10


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ----------------------------------------------------------------------------- 1. ingest
def bench_ingest(n: int, repeat: int, batch_size: int) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    from maru.rag import Document, LocalEmbeddings, LocalStore, RecordManager, index
    from maru.rag.embeddings import default_model_path

    texts = [t for t, _ in rag_corpus.real_chunks(n)]
    docs = [Document(t, {"source": f"doc{i // 20}"}) for i, t in enumerate(texts)]
    raw = SentenceTransformer(default_model_path(), device="cpu")
    ours = LocalEmbeddings(batch_size=32)
    raw.encode(texts[:64], batch_size=32)
    ours.embed_array(texts[:64])  # both models loaded and warm before timing

    def encode(group: list[str]) -> Any:
        return raw.encode(group, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    raw_times, one_call, first, again = [], [], [], []
    for _ in range(repeat):  # interleaved, so drift on a shared machine hits both sides alike
        raw_times.append(_best(lambda: [encode(texts[i : i + batch_size]) for i in range(0, n, batch_size)], 1))
        one_call.append(_best(lambda: encode(texts), 1))
        with tempfile.TemporaryDirectory() as tmp:
            store = LocalStore(Path(tmp) / "store", embeddings=ours)
            records = RecordManager(f"sqlite:///{tmp}/records.sqlite")
            start = time.perf_counter()
            index(docs, store, records, cleanup="incremental", batch_size=batch_size)
            first.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = index(docs, store, records, cleanup="incremental", batch_size=batch_size)
            again.append(time.perf_counter() - start)
            assert result.skipped == n, result
            store.close()
    raw_s, one_s = statistics.median(raw_times), statistics.median(one_call)
    maru_s, rerun_s = statistics.median(first), statistics.median(again)
    print(f"\ningest {n} real chunks (median of {repeat}, interleaved; index batch_size={batch_size}, encode batch 32)")
    print(f"  raw sentence-transformers encode   {raw_s:8.2f} s  {n / raw_s:8.0f} texts/s   (same batches)")
    print(f"  raw encode, all texts in one call  {one_s:8.2f} s  {n / one_s:8.0f} texts/s")
    print(f"  maru index() → LocalStore          {maru_s:8.2f} s  {n / maru_s:8.0f} texts/s   {raw_s / maru_s:.3f}× raw")
    print(f"  maru re-index, unchanged           {rerun_s:8.3f} s                  {maru_s / rerun_s:.0f}× faster than the first")
    return {
        "ingest_chunks": n,
        "ingest_index_batch": batch_size,
        "raw_encode_texts_per_s": n / raw_s,
        "raw_encode_one_call_texts_per_s": n / one_s,
        "maru_ingest_texts_per_s": n / maru_s,
        "ingest_vs_raw_ratio": raw_s / maru_s,
        "reindex_unchanged_s": rerun_s,
        "reindex_speedup_x": maru_s / rerun_s,
    }


# ----------------------------------------------------------------------------- 2. query
def _measure(search: Any, queries: np.ndarray, truth: list[list[int]]) -> dict[str, float]:
    for v in queries[:10]:
        search(v)
    times, hits = [], 0
    for v, want in zip(queries, truth, strict=True):
        start = time.perf_counter()
        got = search(v)
        times.append((time.perf_counter() - start) * 1000)
        hits += len(set(got[:K]) & set(want))
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "recall": hits / (K * len(truth))}


def bench_query(n: int, n_queries: int, lc_queries: int) -> dict[str, float]:
    import faiss

    from maru.rag import Document, LocalStore

    x = rag_corpus.embeddings(n)
    q = rag_corpus.query_embeddings(n_queries)
    texts = [t for t, _ in rag_corpus.real_chunks(n)]
    truth = [list(map(int, row)) for row in np.argsort(-(q @ x.T), axis=1)[:, :K]]
    rows: dict[str, dict[str, float]] = {}

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = LocalStore(Path(tmp) / "store")
        docs = [Document(t, {}, str(i)) for i, t in enumerate(texts)]
        for lo in range(0, n, 10_000):
            store.upsert(docs[lo : lo + 10_000], x[lo : lo + 10_000])
        build = time.perf_counter() - start
        rows["maru LocalStore"] = _measure(lambda v: [int(d.id) for d, _ in store.search(v, K)], q, truth)
        rows["maru LocalStore"]["build_s"] = build
        store.close()

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    build = time.perf_counter() - start
    rows["faiss IndexFlatIP"] = _measure(lambda v: flat.search(v[None, :], K)[1][0].tolist(), q, truth)
    rows["faiss IndexFlatIP"]["build_s"] = build

    from langchain_core.embeddings import Embeddings as LCEmbeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    class Precomputed(LCEmbeddings):  # vectors are given; nothing is embedded here
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise NotImplementedError

        def embed_query(self, text: str) -> list[float]:
            raise NotImplementedError

    start = time.perf_counter()
    lc = InMemoryVectorStore(Precomputed())
    lc.store = {str(i): {"id": str(i), "vector": x[i].tolist(), "text": texts[i], "metadata": {}} for i in range(n)}
    build = time.perf_counter() - start
    rows["LangChain InMemoryVectorStore"] = _measure(
        lambda v: [int(d.id) for d in lc.similarity_search_by_vector(v.tolist(), K)], q[:lc_queries], truth[:lc_queries]
    )
    rows["LangChain InMemoryVectorStore"]["build_s"] = build

    print(f"\nquery: top-{K} over {n} real-text chunks, {n_queries} held-out real questions "
          f"(LangChain: first {lc_queries}); recall@{K} against exact search")
    print(f"  {'store':32s} {'p50 ms':>9s} {'p95 ms':>9s} {'recall':>7s} {'build s':>8s}")
    for name, r in rows.items():
        print(f"  {name:32s} {r['p50_ms']:9.3f} {r['p95_ms']:9.3f} {r['recall']:7.3f} {r['build_s']:8.1f}")
    ours = rows["maru LocalStore"]
    lc_p50 = rows["LangChain InMemoryVectorStore"]["p50_ms"]
    print(f"  LocalStore p50 is {lc_p50 / ours['p50_ms']:.0f}× faster than LangChain's in-memory store")
    return {
        "query_chunks": n,
        "localstore_p50_ms": ours["p50_ms"], "localstore_p95_ms": ours["p95_ms"],
        "localstore_recall_at_10": ours["recall"], "localstore_build_s": ours["build_s"],
        "faiss_flat_p50_ms": rows["faiss IndexFlatIP"]["p50_ms"],
        "faiss_flat_p95_ms": rows["faiss IndexFlatIP"]["p95_ms"],
        "langchain_inmemory_p50_ms": lc_p50,
        "langchain_inmemory_p95_ms": rows["LangChain InMemoryVectorStore"]["p95_ms"],
    }


# ----------------------------------------------------------------------------- 3. quality
def bench_quality() -> dict[str, Any]:
    script = Path(__file__).resolve().parent / "retrieval_quality.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    print(proc.stdout.rstrip().rsplit("\n", 1)[0])
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return {f"quality_{k}": v for k, v in figures.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="ingest,query,quality")
    ap.add_argument("--ingest-n", type=int, default=2000)
    ap.add_argument("--query-n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--langchain-queries", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--index-batch", type=int, default=256, help="documents per index() batch (256: what maru ingest uses)")
    args = ap.parse_args()
    sections = set(args.only.split(","))
    figures: dict[str, Any] = {}
    if "ingest" in sections:
        figures.update(bench_ingest(args.ingest_n, args.repeat, args.index_batch))
    if "query" in sections:
        figures.update(bench_query(args.query_n, args.queries, args.langchain_queries))
    if "quality" in sections:
        figures.update(bench_quality())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
