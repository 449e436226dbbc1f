"""Embedded vector stores compared on real MiniLM embeddings: which one is maru's default.

    .venv/bin/python bench/vector_stores.py [--n 100000] [--only localstore,faiss_hnsw,...]

Corpus: ``rag_corpus.real_chunks(n)`` and their embeddings (cached); queries: 500 held-out real
questions (Cranfield, XQuAD, KorQuAD), never chunks. Truth: exact search in numpy. For each
candidate: build/ingest time (s), on-disk size (MiB), reopen time (ms), query p50/p95 (ms, k=10,
one query at a time, one thread) and recall@10 against exact, unfiltered and under two filters:
``moderate`` (year in 2000–2004, about 14% of rows) and ``selective`` (source = xquad and
year = 2001, about 0.3%). Each ANN index is swept over its search knob (HNSW ef, IVF nprobe) and
reported at the cheapest setting reaching recall@10 ≥ 0.95 unfiltered.

Candidates: LocalStore (maru's: SQLite + usearch HNSW, the whole store path: SQL fetch of the
documents, filters in SQL), usearch HNSW alone, faiss HNSW and IVF-Flat (indexes alone; beside
SQLite they would pay the same fetch), LanceDB (IVF-PQ + refine, and IVF-HNSW-SQ; prefilter), Milvus
Lite (its default index), sqlite-vec (skipped when this Python's sqlite3 cannot load extensions).

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

warnings.simplefilter("ignore")  # LanceDB's deprecation warnings would bury the progress lines
os.environ.setdefault("LANCE_LOG", "error")  # LanceDB's deprecation notices would bury the table
os.environ.setdefault("RUST_LOG", "error")
sys.path.insert(0, str(Path(__file__).parent))
from rag_corpus import embeddings, query_embeddings, real_chunks  # noqa: E402

K = 10
TARGET = 0.95
FILTERS = {
    "moderate": {"maru": ("in", "year", [2000, 2001, 2002, 2003, 2004]),
                 "sql": "year IN (2000, 2001, 2002, 2003, 2004)",
                 "milvus": "year in [2000, 2001, 2002, 2003, 2004]"},
    "selective": {"maru": ("and", "source", "xquad", "year", 2001),
                  "sql": "source = 'xquad' AND year = 2001",
                  "milvus": 'source == "xquad" and year == 2001'},
}
Search = Callable[[np.ndarray, str | None], list[int]]


# ----------------------------------------------------------------------------- measuring
def masks(meta: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    year = np.array([m["year"] for m in meta])
    source = np.array([m["source"] for m in meta])
    return {"moderate": (year >= 2000) & (year <= 2004), "selective": (source == "xquad") & (year == 2001)}


def exact_top(x: np.ndarray, q: np.ndarray, mask: np.ndarray | None) -> list[list[int]]:
    scores = q @ x.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :K]
    return [[int(i) for i in row if np.isfinite(scores[r, i])] for r, row in enumerate(top)]


def measure(search: Search, q: np.ndarray, truth: list[list[int]], flt: str | None) -> dict[str, float]:
    for v in q[:20]:
        search(v, flt)  # warm caches
    times, hits, total = [], 0, 0
    for v, want in zip(q, truth, strict=True):
        t = time.perf_counter()
        got = search(v, flt)
        times.append((time.perf_counter() - t) * 1000)
        hits += len(set(got[:K]) & set(want))
        total += len(want)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "recall": hits / max(total, 1)}


def sweep(name: str, knobs: list[Any], set_knob: Callable[[Any], None], search: Search,
          q: np.ndarray, truth: dict[str | None, list[list[int]]]) -> tuple[Any, dict[str, float]]:
    """The cheapest knob value reaching TARGET recall unfiltered (or the last one tried)."""
    for knob in knobs:
        set_knob(knob)
        r = measure(search, q, truth[None], None)
        print(f"  {name} knob={knob}: recall {r['recall']:.3f} p50 {r['p50_ms']:.2f} ms", file=sys.stderr)
        if r["recall"] >= TARGET:
            return knob, r
    return knobs[-1], r


def disk_mib(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


# ----------------------------------------------------------------------------- candidates
def run_localstore(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    from maru.rag import Document, F
    from maru.rag.stores.local import LocalStore

    path = work / "localstore"
    t = time.perf_counter()
    store = LocalStore(path, save_every=10**9)
    docs = [Document(text, m, str(i)) for i, (text, m) in enumerate(zip(texts, meta, strict=True))]
    for lo in range(0, len(docs), 10_000):
        store.upsert(docs[lo : lo + 10_000], x[lo : lo + 10_000])
    store.close()
    build = time.perf_counter() - t
    t = time.perf_counter()
    store = LocalStore(path)
    reopen = (time.perf_counter() - t) * 1000
    flts = {"moderate": F.in_("year", [2000, 2001, 2002, 2003, 2004]),
            "selective": F.eq("source", "xquad") & F.eq("year", 2001)}

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        return [int(d.id) for d, _ in store.search(v, K, filter=flts[flt] if flt else None)]  # type: ignore[arg-type]

    def set_ef(ef: int) -> None:
        store._index.expansion_search = ef

    knob, r = sweep("localstore", [32, 48, 64, 96, 128, 192, 256], set_ef, search, q, truth)
    out = result(build, disk_mib(path), reopen, f"ef={knob}", r, search, q, truth)
    store.close()
    return out


def run_usearch(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    from usearch.index import Index

    t = time.perf_counter()
    index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128)
    index.add(np.arange(len(x), dtype=np.uint64), x)
    index.save(str(work / "u.usearch"))
    build = time.perf_counter() - t
    t = time.perf_counter()
    index = Index(ndim=x.shape[1], metric="ip", dtype="f32")
    index.load(str(work / "u.usearch"))
    reopen = (time.perf_counter() - t) * 1000

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        return [int(k) for k in index.search(v, K, threads=1).keys]

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    knob, r = sweep("usearch", [32, 48, 64, 96, 128, 192, 256], set_ef, search, q, truth)
    return result(build, (work / "u.usearch").stat().st_size / 2**20, reopen, f"M=16 ef={knob}", r)


def run_faiss_hnsw(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(x.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    faiss.omp_set_num_threads(2)
    index.add(x)
    faiss.omp_set_num_threads(1)
    faiss.write_index(index, str(work / "f.hnsw"))
    build = time.perf_counter() - t
    t = time.perf_counter()
    index = faiss.read_index(str(work / "f.hnsw"))
    reopen = (time.perf_counter() - t) * 1000
    ms = masks(meta)
    params: dict[str, Any] = {}

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        p = faiss.SearchParametersHNSW(efSearch=params["ef"])
        if flt:
            p.sel = params[flt]
        _, ids = index.search(v.reshape(1, -1), K, params=p)
        return [int(i) for i in ids[0] if i >= 0]

    for name, m in ms.items():
        params[name] = faiss.IDSelectorBatch(np.flatnonzero(m).astype("int64"))

    def set_ef(ef: int) -> None:
        params["ef"] = ef

    knob, r = sweep("faiss_hnsw", [32, 48, 64, 96, 128, 192, 256], set_ef, search, q, truth)
    return result(build, disk_mib(work / "f.hnsw"), reopen, f"M=16 ef={knob}", r, search, q, truth)


def run_faiss_ivf(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(2)
    nlist = int(4 * np.sqrt(len(x)))
    t = time.perf_counter()
    quant = faiss.IndexFlatIP(x.shape[1])
    index = faiss.IndexIVFFlat(quant, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    faiss.write_index(index, str(work / "f.ivf"))
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    index = faiss.read_index(str(work / "f.ivf"))
    reopen = (time.perf_counter() - t) * 1000

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        _, ids = index.search(v.reshape(1, -1), K)
        return [int(i) for i in ids[0] if i >= 0]

    def set_nprobe(n: int) -> None:
        index.nprobe = n

    knob, r = sweep("faiss_ivf", [8, 16, 32, 48, 64, 96], set_nprobe, search, q, truth)
    return result(build, disk_mib(work / "f.ivf"), reopen, f"nlist={nlist} nprobe={knob}", r)


def run_lancedb(x, meta, texts, q, truth, work: Path, index_type: str) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa

    path = work / f"lance-{index_type}"
    t = time.perf_counter()
    db = lancedb.connect(str(path))
    table = pa.table({
        "id": pa.array(np.arange(len(x)), pa.int64()),
        "text": texts,
        "source": [m["source"] for m in meta],
        "lang": [m["lang"] for m in meta],
        "year": pa.array([m["year"] for m in meta], pa.int64()),
        "tags": [m["tags"] for m in meta],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]),
    })
    tbl = db.create_table("chunks", data=table)
    if index_type == "IVF_PQ":
        tbl.create_index(metric="cosine", index_type="IVF_PQ", num_partitions=256, num_sub_vectors=48)
    else:
        tbl.create_index(metric="cosine", index_type="IVF_HNSW_SQ", num_partitions=64)
    tbl.create_scalar_index("year")
    tbl.create_scalar_index("source", index_type="BITMAP")
    build = time.perf_counter() - t
    t = time.perf_counter()
    tbl = lancedb.connect(str(path)).open_table("chunks")
    tbl.search(q[0]).limit(1).to_arrow()
    reopen = (time.perf_counter() - t) * 1000
    knob_state: dict[str, int] = {}

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        s = tbl.search(v).distance_type("cosine").select(["id"]).limit(K)
        if index_type == "IVF_PQ":
            s = s.nprobes(knob_state["n"]).refine_factor(10)
        else:
            s = s.nprobes(knob_state["n"]).ef(knob_state["n"] * 8)
        if flt:
            s = s.where(FILTERS[flt]["sql"], prefilter=True)
        return s.to_arrow()["id"].to_pylist()

    def set_knob(n: int) -> None:
        knob_state["n"] = n

    knob, r = sweep(f"lancedb_{index_type}", [8, 16, 32, 64], set_knob, search, q, truth)
    return result(build, disk_mib(path), reopen, f"{index_type} nprobes={knob}", r, search, q, truth)


def run_milvus(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    from pymilvus import DataType, MilvusClient

    path = work / "milvus.db"
    t = time.perf_counter()
    client = MilvusClient(str(path))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=x.shape[1])
    schema.add_field("source", DataType.VARCHAR, max_length=32)
    schema.add_field("year", DataType.INT64)
    params = client.prepare_index_params()
    params.add_index("vector", index_type="IVF_FLAT", metric_type="COSINE", params={"nlist": 1024})
    client.create_collection("chunks", schema=schema, index_params=params)
    for lo in range(0, len(x), 5000):
        client.insert("chunks", [
            {"id": i, "vector": x[i].tolist(), "source": meta[i]["source"], "year": meta[i]["year"]}
            for i in range(lo, min(lo + 5000, len(x)))
        ])
    client.flush("chunks")
    client.close()
    build = time.perf_counter() - t
    t = time.perf_counter()
    client = MilvusClient(str(path))
    client.load_collection("chunks")
    reopen = (time.perf_counter() - t) * 1000
    state: dict[str, int] = {}

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        res = client.search("chunks", data=[v.tolist()], limit=K, filter=FILTERS[flt]["milvus"] if flt else "",
                            search_params={"metric_type": "COSINE", "params": {"nprobe": state["n"]}})
        return [int(h["id"]) for h in res[0]]

    def set_knob(n: int) -> None:
        state["n"] = n

    knob, r = sweep("milvus_lite", [8, 16, 32, 64, 128], set_knob, search, q, truth)
    out = result(build, disk_mib(work) - 0, reopen, f"IVF_FLAT nlist=1024 nprobe={knob}", r, search, q, truth)
    client.close()
    return out


def run_exact(x, meta, texts, q, truth, work: Path) -> dict[str, Any]:
    ms = masks(meta)

    def search(v: np.ndarray, flt: str | None) -> list[int]:
        s = x @ v
        if flt:
            s = np.where(ms[flt], s, -np.inf)
        top = np.argpartition(-s, K)[:K]
        return [int(i) for i in top[np.argsort(-s[top])]]

    r = measure(search, q, truth[None], None)
    return result(0.0, x.nbytes / 2**20, 0.0, "numpy brute force", r, search, q, truth)


def result(build: float, disk: float, reopen: float, setting: str, r: dict[str, float],
           search: Search | None = None, q: Any = None, truth: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"setting": setting, "build_s": build, "disk_mib": disk, "reopen_ms": reopen, **r}
    if search is not None:
        for name in FILTERS:
            f = measure(search, q, truth[name], name)
            out.update({f"{name}_{k}": v for k, v in f.items()})
    return out


CANDIDATES: dict[str, Callable[..., dict[str, Any]]] = {
    "exact": run_exact,
    "localstore": run_localstore,
    "usearch": run_usearch,
    "faiss_hnsw": run_faiss_hnsw,
    "faiss_ivf": run_faiss_ivf,
    "lancedb_ivfpq": lambda *a: run_lancedb(*a, index_type="IVF_PQ"),
    "lancedb_hnswsq": lambda *a: run_lancedb(*a, index_type="IVF_HNSW_SQ"),
    "milvus_lite": run_milvus,
}


def sqlite_vec_usable() -> bool:
    import sqlite3

    return hasattr(sqlite3.Connection, "enable_load_extension")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--only", default=",".join(CANDIDATES))
    args = ap.parse_args()
    chunks = real_chunks(args.n)
    texts = [t for t, _ in chunks]
    meta = [m for _, m in chunks]
    x = embeddings(args.n)
    q = query_embeddings(500)[: args.queries]
    ms = masks(meta)
    truth = {None: exact_top(x, q, None), **{k: exact_top(x, q, m) for k, m in ms.items()}}
    print(f"n={len(x)} dim={x.shape[1]} queries={len(q)} filters: "
          + ", ".join(f"{k} {m.mean():.2%}" for k, m in ms.items()), file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    for name in args.only.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"vs-{name}-", dir="/tmp"))
        try:
            print(f"{name} …", file=sys.stderr, flush=True)
            results[name] = CANDIDATES[name](x, meta, texts, q, truth, work)
        except Exception as exc:  # noqa: BLE001 — one failing candidate must not hide the others
            print(f"  {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not sqlite_vec_usable():
        print("sqlite-vec: skipped, this Python's sqlite3 cannot load extensions "
              "(no enable_load_extension)", file=sys.stderr)
    table(results, len(x))
    figures: dict[str, Any] = {"n_chunks": len(x), "n_queries": len(q)}
    for name, r in results.items():
        for key, value in r.items():
            if key != "setting":
                figures[f"{name}_{key}"] = round(value, 4) if isinstance(value, float) else value
    print(json.dumps(figures))


def table(results: dict[str, dict[str, Any]], n: int) -> None:
    cols = ["build_s", "disk_mib", "reopen_ms", "p50_ms", "p95_ms", "recall",
            "moderate_p50_ms", "moderate_recall", "selective_p50_ms", "selective_recall"]
    print(f"\n{n} chunks, k={K}, one query at a time")
    print(f"| candidate | setting | {' | '.join(cols)} |")
    print("|" + "---|" * (len(cols) + 2))
    for name, r in results.items():
        cells = [f"{r[c]:.3g}" if c in r else "–" for c in cols]
        print(f"| {name} | {r['setting']} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
