"""InMemoryCache: LRU order, TTL, thread safety, and that hits are the stored objects."""

import asyncio
import threading

import pytest

from maru.cache import InMemoryCache

from .conftest import FakeClock, request, response


def test_miss_then_hit_returns_the_stored_object():
    cache = InMemoryCache()
    req = request("hi")
    assert cache.lookup(req) is None
    stored = response("hello")
    cache.update(req, stored)
    assert cache.lookup(req) is stored  # no copy, no serialisation
    assert cache.lookup(request("hi", temperature=0.3)) is None
    assert cache.lookup(request("hi", system="be verbose")) is None


def test_least_recently_used_is_evicted_first():
    cache = InMemoryCache(maxsize=3)
    a, b, c, d = (request(q) for q in "abcd")
    for req in (a, b, c):
        cache.update(req, response(req.prompt_text))
    assert cache.lookup(a) is not None  # a is now the most recently used; b the least
    cache.update(d, response("d"))
    assert len(cache) == 3
    assert cache.lookup(b) is None
    assert [cache.lookup(r).message.content for r in (a, c, d)] == ["a", "c", "d"]
    # order now (least recent first): a, c, d. Overwriting c refreshes it: a, d, c; adding e evicts a
    cache.update(c, response("c2"))
    cache.update(request("e"), response("e"))
    assert cache.lookup(a) is None
    assert cache.lookup(c).message.content == "c2"
    assert cache.lookup(d) is not None


def test_ttl_expires_entries_without_sleeping():
    clock = FakeClock()
    cache = InMemoryCache(ttl=10, clock=clock)
    req = request("q")
    cache.update(req, response())
    clock.advance(9.9)
    assert cache.lookup(req) is not None
    clock.advance(0.1)
    assert cache.lookup(req) is None
    assert len(cache) == 0  # the expired entry was dropped by the lookup
    cache.update(req, response("again"))  # storing again restarts the clock
    clock.advance(5)
    assert cache.lookup(req).message.content == "again"


def test_clear_and_bad_arguments():
    cache = InMemoryCache()
    cache.update(request("q"), response())
    cache.clear()
    assert cache.lookup(request("q")) is None and len(cache) == 0
    with pytest.raises(ValueError, match="maxsize"):
        InMemoryCache(maxsize=0)
    with pytest.raises(ValueError, match="ttl"):
        InMemoryCache(ttl=0)


def test_threads_hammering_one_cache_keep_it_consistent():
    cache = InMemoryCache(maxsize=500)
    requests = [request(f"question {i}") for i in range(1000)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(offset: int) -> None:
        try:
            start.wait()
            for i in range(3000):
                req = requests[(offset * 131 + i) % len(requests)]
                hit = cache.lookup(req)
                if hit is None:
                    cache.update(req, response(req.prompt_text))
                else:
                    assert hit.message.content == req.prompt_text  # never someone else's answer
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 500
    held = [r for r in requests if cache.lookup(r) is not None]
    assert len(held) == 500


def test_async_twins_share_the_store():
    cache = InMemoryCache()

    async def main():
        await cache.aupdate(request("q"), response("async"))
        return await cache.alookup(request("q"))

    assert asyncio.run(main()).message.content == "async"
    assert cache.lookup(request("q")).message.content == "async"
