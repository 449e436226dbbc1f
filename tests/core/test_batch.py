"""batch / abatch: concurrency limits on one shared executor, per-item exceptions."""

import asyncio
import threading
import time

import pytest

from maru import parallel, runnable
from maru.core import executor


class Gauge:
    """Counts how many calls are inside at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def test_batch_of_pure_steps_runs_inline_in_order():
    threads = set()

    def square(x):
        threads.add(threading.current_thread().name)
        return x * x

    assert runnable(square).batch(range(50)) == [x * x for x in range(50)]
    assert threads == {threading.current_thread().name}


def test_io_bound_batch_honours_max_concurrency_on_the_shared_executor():
    gauge = Gauge()
    threads = set()

    @runnable(io_bound=True)
    def fetch(x):
        with gauge:
            threads.add(threading.current_thread().name)
            time.sleep(0.02)
        return x

    assert fetch.batch(list(range(20)), max_concurrency=3) == list(range(20))
    assert gauge.peak == 3
    assert all(t == "MainThread" or t.startswith("maru") for t in threads)
    pool = executor.shared_executor()
    fetch.batch(list(range(20)), max_concurrency=4)
    assert executor.shared_executor() is pool  # one pool, never one per call


def test_max_concurrency_from_config():
    gauge = Gauge()

    @runnable(io_bound=True)
    def fetch(x):
        with gauge:
            time.sleep(0.01)
        return x

    fetch.batch(list(range(10)), {"max_concurrency": 2})
    assert gauge.peak == 2
    gauge.peak = 0
    fetch.with_config(max_concurrency=1).batch(list(range(5)))
    assert gauge.peak == 1


def test_batch_return_exceptions_keeps_positions():
    def maybe(x):
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    for step in (runnable(maybe), runnable(maybe, io_bound=True)):
        out = step.batch([0, 1, 2, 3], return_exceptions=True)
        assert out[0] == 0 and out[2] == 2
        assert isinstance(out[1], ValueError) and str(out[3]) == "odd 3"
        with pytest.raises(ValueError):
            step.batch([0, 1, 2])


def test_batch_with_one_config_per_input():
    step = runnable(lambda x, config=None: (x, config["metadata"]["i"]))
    assert step.batch([1, 2], [{"metadata": {"i": 10}}, {"metadata": {"i": 20}}]) == [(1, 10), (2, 20)]
    with pytest.raises(ValueError, match="2 inputs but 1 configs"):
        step.batch([1, 2], [{"tags": []}])


def test_abatch_honours_max_concurrency_and_exceptions():
    gauge = Gauge()

    @runnable
    async def work(x):
        with gauge:
            await asyncio.sleep(0.01)
        if x == 3:
            raise KeyError("three")
        return x

    out = asyncio.run(work.abatch(list(range(8)), max_concurrency=2, return_exceptions=True))
    assert gauge.peak == 2
    assert out[:3] == [0, 1, 2] and isinstance(out[3], KeyError) and out[4:] == [4, 5, 6, 7]


def test_abatch_of_sync_io_bound_runs_on_threads_concurrently():
    gauge = Gauge()

    @runnable(io_bound=True)
    def blocking(x):
        with gauge:
            time.sleep(0.02)
        return x + 1

    assert asyncio.run(blocking.abatch([1, 2, 3, 4], max_concurrency=4)) == [2, 3, 4, 5]
    assert gauge.peak >= 2


def test_parallel_runs_io_bound_branches_concurrently():
    @runnable(io_bound=True)
    def slow(x):
        time.sleep(0.1)
        return x

    p = parallel(a=slow, b=slow, c=slow)
    start = time.perf_counter()
    assert p.invoke(1) == {"a": 1, "b": 1, "c": 1}
    assert time.perf_counter() - start < 0.25  # not 0.3: they overlapped

    async def aslow(x):
        await asyncio.sleep(0.1)
        return x

    ap = parallel(a=aslow, b=aslow, c=aslow)
    start = time.perf_counter()
    assert asyncio.run(ap.ainvoke(2)) == {"a": 2, "b": 2, "c": 2}
    assert time.perf_counter() - start < 0.25


def test_nested_io_bound_batches_do_not_deadlock_a_small_pool(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    small = ThreadPoolExecutor(max_workers=2, thread_name_prefix="maru-test")
    monkeypatch.setattr(executor, "_executor", small)
    inner = runnable(lambda x: x + 1, io_bound=True)

    @runnable(io_bound=True)
    def outer(x):
        return sum(inner.batch([x] * 4, max_concurrency=4))

    try:
        assert outer.batch(list(range(6)), max_concurrency=6) == [4 * (x + 1) for x in range(6)]
    finally:
        small.shutdown()


def test_parallel_error_propagates():
    def boom(x):
        raise RuntimeError("branch failed")

    p = parallel(ok=runnable(lambda x: x, io_bound=True), bad=runnable(boom, io_bound=True))
    with pytest.raises(RuntimeError, match="branch failed"):
        p.invoke(1)
