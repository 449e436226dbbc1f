"""RedisCache against a real redis-server (started by the tests), and with Redis down."""

import asyncio
import socket
import threading
import time
import warnings

import pytest

from conftest import free_port, redis_server
from maru.cache import CacheUnavailableWarning, RedisCache
from maru.errors import CacheError

from .conftest import request, response, streamed_response


def _recorded() -> warnings.catch_warnings:
    return warnings.catch_warnings(record=True)


# --------------------------------------------------------------------------- a real server
@pytest.mark.integration
def test_round_trip_through_a_real_server(redis_db):
    import redis

    cache = RedisCache(redis_db)
    req = request("capital of Korea?")
    assert cache.lookup(req) is None
    cache.update(req, response("Seoul"))
    hit = cache.lookup(req)
    assert (
        hit is not None and hit.message.content == "Seoul" and hit.message.usage.output_tokens == 2
    )
    assert cache.lookup(request("capital of Japan?")) is None

    raw = redis.Redis.from_url(redis_db)
    assert raw.exists("maru:cache:" + req.key)
    assert raw.ttl("maru:cache:" + req.key) == -1  # no ttl: never expires
    # a second process or machine sees the same entry
    assert RedisCache(redis_db).lookup(req).message.content == "Seoul"


@pytest.mark.integration
def test_streamed_response_with_tool_call_chunks(redis_db):
    cache = RedisCache(redis_db)
    stored = streamed_response()
    cache.update(request("weather?"), stored)
    assert cache.lookup(request("weather?")) == stored


@pytest.mark.integration
def test_ttl_is_enforced_by_redis(redis_db):
    import redis

    cache = RedisCache(redis_db, ttl=0.3)
    req = request("q")
    cache.update(req, response())
    pttl = redis.Redis.from_url(redis_db).pttl("maru:cache:" + req.key)
    assert 0 < pttl <= 300
    assert cache.lookup(req) is not None
    time.sleep(0.45)
    assert cache.lookup(req) is None


@pytest.mark.integration
def test_prefixes_isolate_and_clear_deletes_only_its_own_keys(redis_db):
    import redis

    raw = redis.Redis.from_url(redis_db)
    raw.set("unrelated", "keep me")
    app_a = RedisCache(redis_db, prefix="app*a:")  # a glob character in the prefix is escaped
    app_b = RedisCache(redis_db, prefix="app-b:")
    app_a.update(request("q"), response("from a"))
    app_b.update(request("q"), response("from b"))
    for i in range(1200):  # more than one SCAN page / UNLINK batch
        app_a.update(request(f"q{i}"), response())
    assert app_a.lookup(request("q")).message.content == "from a"
    assert app_b.lookup(request("q")).message.content == "from b"
    app_a.clear()
    assert app_a.lookup(request("q")) is None and app_a.lookup(request("q7")) is None
    assert app_b.lookup(request("q")).message.content == "from b"
    assert raw.get("unrelated") == b"keep me"
    assert raw.dbsize() == 2


@pytest.mark.integration
def test_native_async(redis_db):
    cache = RedisCache(redis_db, ttl=60)

    async def main():
        await cache.aupdate(request("q"), streamed_response())
        hit = await cache.alookup(request("q"))
        miss = await cache.alookup(request("other"))
        await cache.aclose()
        return hit, miss

    hit, miss = asyncio.run(main())
    assert hit == streamed_response() and miss is None
    assert cache.lookup(request("q")) == streamed_response()  # sync sees what async wrote
    # a second event loop gets its own client
    assert asyncio.run(cache.alookup(request("q"))) == streamed_response()


@pytest.mark.integration
def test_a_client_passed_in_is_used(redis_db):
    import redis

    client = redis.Redis.from_url(redis_db)
    cache = RedisCache(client=client, prefix="mine:")
    cache.update(request("q"), response("via client"))
    assert client.exists("mine:" + request("q").key)
    assert asyncio.run(cache.alookup(request("q"))).message.content == "via client"
    cache.close()
    assert client.ping()  # not closed: it belongs to the caller


# --------------------------------------------------------------------------- Redis down
def test_redis_down_warns_once_and_calls_go_on():
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens here
    cache = RedisCache(url, retry_after=0)  # try every time: still only one warning per outage
    with _recorded() as caught:
        warnings.simplefilter("always")
        for i in range(5):
            assert cache.lookup(request(f"q{i}")) is None
            cache.update(request(f"q{i}"), response())  # does nothing, raises nothing
        cache.clear()
    unavailable = [w for w in caught if issubclass(w.category, CacheUnavailableWarning)]
    assert len(unavailable) == 1
    text = str(unavailable[0].message)
    assert url in text and "without the cache" in text
    assert issubclass(CacheUnavailableWarning, UserWarning)


def test_redis_down_then_up_then_down_again_warns_per_outage():
    port = free_port()
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", retry_after=0)
    with _recorded() as caught:
        warnings.simplefilter("always")
        assert cache.lookup(request("q")) is None  # outage 1
        with redis_server(port):
            cache.update(request("q"), response("back"))
            assert cache.lookup(request("q")).message.content == "back"
        assert cache.lookup(request("q")) is None  # outage 2
        assert cache.lookup(request("q")) is None
    assert sum(issubclass(w.category, CacheUnavailableWarning) for w in caught) == 2


def test_on_error_raise_gives_cache_error():
    port = free_port()
    cache = RedisCache(f"redis://:s3cret@127.0.0.1:{port}/0", on_error="raise")
    with pytest.raises(CacheError) as info:
        cache.lookup(request("q"))
    assert f"redis://:***@127.0.0.1:{port}/0" in str(info.value)
    assert "s3cret" not in str(info.value)  # the password never reaches a message
    with pytest.raises(CacheError):
        cache.update(request("q"), response())
    with pytest.raises(CacheError):
        asyncio.run(cache.alookup(request("q")))


class _DeadClient:
    """Stands in for a redis.Redis whose server is gone; counts how often it is tried."""

    def __init__(self):
        self.calls = 0

    def get(self, key):
        import redis

        self.calls += 1
        raise redis.ConnectionError("Connection refused")

    set = get


def test_while_down_the_cache_is_not_even_tried_for_retry_after_seconds():
    dead = _DeadClient()
    cache = RedisCache(client=dead, retry_after=60)
    with _recorded():
        warnings.simplefilter("ignore")
        for _ in range(10):
            assert cache.lookup(request("q")) is None
            cache.update(request("q"), response())
    assert dead.calls == 1  # later calls skip Redis instead of paying a connect attempt each


def test_a_failing_connection_is_tried_once_not_retried():
    # A server that accepts and hangs up at once. redis-py's default policy would retry three
    # times with backoff (~3 s); a cache must give up at the first failure.
    accepted = 0
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]

        def serve():
            nonlocal accepted
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                accepted += 1
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        cache = RedisCache(f"redis://127.0.0.1:{port}/0", on_error="raise")
        with pytest.raises(CacheError):
            cache.lookup(request("q"))
        time.sleep(0.3)  # would-be retries have had time to arrive
    thread.join(2)
    assert accepted == 1


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="on_error"):
        RedisCache(on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        RedisCache(ttl=0)
