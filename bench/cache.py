"""Response-cache latency, maru next to LangChain, in one run.

    .venv/bin/python bench/cache.py [--quick]

Every figure is µs for one whole chat-model ``invoke`` (the test-double model on both sides, so the
model itself costs next to nothing and the figure is the framework plus the cache):

- hit: the same request again, served from the cache;
- miss+store: a new request each time (model called, answer stored), minus the same call uncached.

LangChain: ``langchain_core.caches.InMemoryCache`` and ``langchain_community.cache.SQLiteCache`` on
``FakeListChatModel``. Redis: maru only (a real ``redis-server`` on loopback, started here when the
binary is installed). The last line is one JSON object of the figures.
"""

from __future__ import annotations

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


def main() -> None:
    from langchain_community.cache import SQLiteCache as LCSQLiteCache
    from langchain_core.caches import InMemoryCache as LCInMemoryCache

    from maru.cache import InMemoryCache, RedisCache, SQLiteCache

    figures: dict[str, float] = {}
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
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
