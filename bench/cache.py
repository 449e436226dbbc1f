"""Response-cache latency, maru next to LangChain, in one run.

    .venv/bin/python bench/cache.py [--quick]

Every figure is µs for one whole chat-model ``invoke`` (the test-double model on both sides, so the
model itself costs next to nothing and the figure is the framework plus the cache):

- hit: the same request again, served from the cache;
- miss+store: a new request each time (model called, answer stored), minus the same call uncached.

LangChain: ``langchain_core.caches.InMemoryCache`` and ``langchain_community.cache.SQLiteCache`` on
``FakeListChatModel``. Redis: maru only (a real ``redis-server`` on loopback, started here when the
binary is installed).

Then the semantic cache's quality (``--part quality`` runs only this): on the question pairs of
``bench/cache_pairs.py`` (built from KorQuAD and XQuAD questions; its docstring says how), one fresh
``SemanticCache`` per pair stores the first question and looks up the second. Per embedding model
and language: the hit rate on paraphrases (higher is better) and the false-hit rate on pairs whose
cached answer is wrong (different question on the same paragraph, entity swapped, number changed,
negated; lower is better), with the default threshold and the guard on, and with the guard off. A
threshold sweep shows how the default was calibrated. Japanese has no analyser: its semantic hits
are refused. The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")  # LangChain's deprecation notices would bury the table
sys.path.insert(0, str(Path(__file__).parent))
from cache_pairs import Pair, all_pairs  # noqa: E402
from runtime import per_call_us  # noqa: E402  (same timing method as the runtime bench)

QUESTION = [("system", "You are a concise travel guide."), ("human", "What should I see in Seoul?")]
REPLY = "Gyeongbokgung in the morning, Bukchon after, Gwangjang Market for dinner."


def maru_model(cache: Any) -> Any:
    from maru.models import ScriptedChatModel

    return ScriptedChatModel(replies=[REPLY], cycle=True, cache=cache)


def langchain_model(cache: Any) -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=[REPLY], cache=cache)


def hit_and_miss(model: Any, uncached: Any) -> tuple[float, float]:
    model.invoke(QUESTION)  # fill
    hit = per_call_us(lambda: model.invoke(QUESTION))
    counter = itertools.count()
    miss = per_call_us(lambda: model.invoke([*QUESTION[:1], ("human", f"q{next(counter)}")]))
    base_counter = itertools.count()
    base = per_call_us(lambda: uncached.invoke([*QUESTION[:1], ("human", f"q{next(base_counter)}")]))
    return hit, miss - base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, None


def latency(figures: dict[str, float]) -> None:
    from langchain_community.cache import SQLiteCache as LCSQLiteCache
    from langchain_core.caches import InMemoryCache as LCInMemoryCache

    from maru.cache import InMemoryCache, RedisCache, SQLiteCache

    rows: list[tuple[str, float, float | None, float | None, float | None]] = []
    maru_plain = maru_model(False)
    lc_plain = langchain_model(None)
    figures["uncached_invoke_us"] = round(per_call_us(lambda: maru_plain.invoke(QUESTION)), 2)
    figures["uncached_invoke_langchain_us"] = round(per_call_us(lambda: lc_plain.invoke(QUESTION)), 2)

    with tempfile.TemporaryDirectory() as tmp:
        backends = [
            ("memory", InMemoryCache(), LCInMemoryCache()),
            ("sqlite", SQLiteCache(Path(tmp) / "maru.sqlite"), LCSQLiteCache(str(Path(tmp) / "lc.sqlite"))),
        ]
        for name, ours, theirs in backends:
            hit, miss = hit_and_miss(maru_model(ours), maru_plain)
            lc_hit, lc_miss = hit_and_miss(langchain_model(theirs), lc_plain)
            figures[f"{name}_hit_us"] = round(hit, 2)
            figures[f"{name}_hit_langchain_us"] = round(lc_hit, 2)
            figures[f"{name}_miss_store_overhead_us"] = round(miss, 2)
            figures[f"{name}_miss_store_overhead_langchain_us"] = round(lc_miss, 2)
            rows.append((name, hit, lc_hit, miss, lc_miss))

        proc, url = start_redis()
        if proc is not None and url is not None:
            try:
                hit, miss = hit_and_miss(maru_model(RedisCache(url)), maru_plain)
                figures["redis_hit_us"] = round(hit, 2)
                figures["redis_miss_store_overhead_us"] = round(miss, 2)
                rows.append(("redis (loopback)", hit, None, miss, None))
            finally:
                proc.terminate()
                proc.wait(5)
        else:
            print("redis-server not installed: run scripts/services.sh to include Redis")

        streamed = maru_model(InMemoryCache())
        list(streamed.stream(QUESTION))
        figures["memory_stream_hit_us"] = round(per_call_us(lambda: list(streamed.stream(QUESTION))), 2)

    from rich.console import Console
    from rich.table import Table

    table = Table(title="chat-model call with a response cache (µs per invoke, lower is better)")
    for col in ("backend", "maru hit", "LangChain hit", "LC / maru", "maru miss+store", "LangChain miss+store"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for name, hit, lc_hit, miss, lc_miss in rows:
        table.add_row(
            name,
            f"{hit:.1f}",
            f"{lc_hit:.1f}" if lc_hit is not None else "-",
            f"{lc_hit / hit:.1f}x" if lc_hit is not None else "-",
            f"{miss:.1f}",
            f"{lc_miss:.1f}" if lc_miss is not None else "-",
        )
    Console(width=120).print(table)
    print(
        f"uncached invoke: maru {figures['uncached_invoke_us']} µs, LangChain "
        f"{figures['uncached_invoke_langchain_us']} µs; a cached stream replays in "
        f"{figures['memory_stream_hit_us']} µs (LangChain's stream() bypasses its cache)"
    )


# --------------------------------------------------------------------------- semantic quality
WRONG_KINDS = ("different", "entity", "number", "negation")
SWEEP = [round(0.80 + 0.01 * i, 2) for i in range(19)]
MAX_FALSE_HITS = 0.01  # calibration: fewer wrong answers than this among lookups that must miss


VECTORS = Path(__file__).resolve().parents[1] / ".bench-cache"


class Precomputed:
    """A QueryEmbedder over vectors computed in one batch (the cache sees the same vectors it
    would get one query at a time, without paying the model per pair), kept in .bench-cache/
    under a hash of the model and the texts."""

    def __init__(self, name: str, batch: Any, texts: list[str]) -> None:
        import hashlib

        import numpy as np

        self.name = name
        unique = sorted(set(texts))
        digest = hashlib.sha256("\n".join([name, *unique]).encode()).hexdigest()[:16]
        saved = VECTORS / f"cache-pairs-{digest}.npy"
        if saved.exists():
            vectors = np.load(saved)
        else:
            vectors = np.asarray(batch(unique), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            VECTORS.mkdir(exist_ok=True)
            np.save(saved, vectors)
        self.vectors = dict(zip(unique, vectors, strict=True))

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text].tolist()  # type: ignore[no-any-return]

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)

    def similarity(self, a: str, b: str) -> float:
        return float(self.vectors[a] @ self.vectors[b])


def embedders(texts: list[str]) -> list[Precomputed]:
    from maru.models import E5Embeddings
    from maru.rag import LocalEmbeddings

    return [
        Precomputed("multilingual-e5-small", lambda t: E5Embeddings().embed_queries(t), texts),
        Precomputed("all-MiniLM-L6-v2", lambda t: LocalEmbeddings().embed_documents(t), texts),
    ]


def verdicts(pairs: list[Pair], embedder: Precomputed, threshold: float, guard: bool) -> list[bool]:
    """Whether the cache, holding ``pair.stored`` alone, answers ``pair.asked`` from it."""
    from maru.cache import CachedResponse, CacheRequest, SemanticCache
    from maru.messages import AIMessage, HumanMessage

    def req(text: str) -> CacheRequest:
        return CacheRequest("m", [HumanMessage(text)], {"model": "m"})

    out = []
    for pair in pairs:
        cache = SemanticCache(embedder, threshold=threshold, guard=guard)
        cache.update(req(pair.stored), CachedResponse(AIMessage("cached")))
        out.append(cache.lookup(req(pair.asked)) is not None)
    return out


def rates(pairs: list[Pair], hits: list[bool]) -> dict[str, float]:
    """Hit rate on paraphrases, false-hit rate per wrong kind and over all wrong pairs (%)."""
    out: dict[str, float] = {}
    for kind in ("paraphrase", *WRONG_KINDS, "wrong"):
        chosen = [h for p, h in zip(pairs, hits, strict=True) if (p.kind == kind or (kind == "wrong" and not p.same))]
        if chosen:
            out[kind] = round(100 * sum(chosen) / len(chosen), 1)
    return out


def default_threshold() -> float:
    import inspect

    from maru.cache import SemanticCache

    return float(inspect.signature(SemanticCache).parameters["threshold"].default)


def calibrate(pairs: list[Pair], embedder: Precomputed) -> tuple[dict[str, float], list[tuple[float, dict[str, dict[str, float]]]]]:
    """Per guarded language, the lowest threshold at which, guard on, fewer than MAX_FALSE_HITS
    of the pairs that must miss (different questions and near misses together) hit; and the sweep
    it was read from. The default threshold is the strictest of the languages'."""
    guarded = [p for p in pairs if p.lang != "ja"]
    sims = [embedder.similarity(p.stored, p.asked) for p in guarded]
    allowed = verdicts(guarded, embedder, threshold=-1.0, guard=True)  # the guard alone
    sweep = []
    for t in SWEEP:
        hits = [ok and sim >= t for ok, sim in zip(allowed, sims, strict=True)]
        per_lang = {
            lang: rates([p for p in guarded if p.lang == lang], [h for p, h in zip(guarded, hits, strict=True) if p.lang == lang])
            for lang in ("ko", "en")
        }
        sweep.append((t, per_lang))
    chosen = {
        lang: next((t for t, r in sweep if r[lang]["wrong"] < 100 * MAX_FALSE_HITS), SWEEP[-1])
        for lang in ("ko", "en")
    }
    return chosen, sweep


def quality(figures: dict[str, float]) -> None:
    import logging

    from rich.console import Console
    from rich.table import Table

    logging.getLogger("maru.cache").setLevel(logging.ERROR)  # one unguarded warning per fresh cache

    pairs = all_pairs()
    threshold = default_threshold()
    console = Console(width=140)
    table = Table(title=f"semantic cache on {len(pairs)} question pairs, threshold {threshold} (%)")
    for col in ("embeddings", "lang", "guard", "paraphrase hits", *(f"{k} false hits" for k in WRONG_KINDS), "all wrong"):
        table.add_column(col, justify="left" if col in ("embeddings", "lang", "guard") else "right")
    for embedder in embedders([t for p in pairs for t in (p.stored, p.asked)]):
        for guard in (True, False):
            hits = verdicts(pairs, embedder, threshold, guard)
            for lang in ("en", "ko", "ja"):
                chosen = [(p, h) for p, h in zip(pairs, hits, strict=True) if p.lang == lang]
                r = rates([p for p, _ in chosen], [h for _, h in chosen])
                for kind, value in r.items():
                    figures[f"{embedder.name}_{lang}_{'guard' if guard else 'noguard'}_{kind}_pct"] = value
                table.add_row(
                    embedder.name, lang, "on" if guard else "off", f"{r['paraphrase']:.1f}",
                    *(f"{r[k]:.1f}" if k in r else "-" for k in WRONG_KINDS), f"{r['wrong']:.1f}",
                )  # fmt: skip
        chosen_t, sweep = calibrate(pairs, embedder)
        for lang, t in chosen_t.items():
            figures[f"{embedder.name}_{lang}_calibrated_threshold"] = t
        console.print(
            f"{embedder.name}: threshold sweep, guard on (% paraphrase hits / different-question "
            "false hits / all-wrong false hits):\n"
            + "\n".join(
                f"  {t:.2f}  " + "   ".join(f"{lang} {v['paraphrase']:5.1f} / {v['different']:4.1f} / {v['wrong']:4.1f}" for lang, v in r.items())
                for t, r in sweep
            )
        )
        console.print(
            f"{embedder.name}: lowest threshold with under {MAX_FALSE_HITS:.0%} false hits among the pairs "
            f"that must miss: {chosen_t} (the default is {threshold})"
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=("all", "latency", "quality"), default="all")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    if args.part in ("all", "latency"):
        latency(figures)
    if args.part in ("all", "quality"):
        quality(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
