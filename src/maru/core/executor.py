"""The one thread pool every blocking step shares, and bridges between sync and async code.

A pool per call costs a thread start per call and lets nested batches multiply threads; one shared,
lazily created pool bounded by ``MARU_MAX_WORKERS`` does neither. Work submitted here carries the
caller's ``contextvars`` context, so run events keep their parent across threads.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def default_max_workers() -> int:
    return int(os.environ.get("MARU_MAX_WORKERS", "0")) or min(64, (os.cpu_count() or 1) * 8)


def shared_executor() -> ThreadPoolExecutor:
    """The process-wide pool, created on first use."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                from concurrent.futures import ThreadPoolExecutor

                _executor = ThreadPoolExecutor(
                    max_workers=default_max_workers(), thread_name_prefix="maru"
                )
    return _executor


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn(*args)`` on the shared pool inside a copy of the caller's context."""
    ctx = contextvars.copy_context()
    return shared_executor().submit(ctx.run, fn, *args)


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Await ``fn(*args)`` run on the shared pool, with the caller's context."""
    import asyncio

    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(shared_executor(), ctx.run, fn, *args)


def run_bounded(fn: Callable[[int], T], n: int, max_concurrency: int | None) -> list[tuple[bool, Any]]:
    """Call ``fn(i)`` for ``i in range(n)`` with at most ``max_concurrency`` running at once and
    return ``(ok, value_or_exception)`` per item, in input order.

    The calling thread works too: it and up to ``max_concurrency - 1`` pool workers pull indices from
    one counter. Workers that have not started by the time the caller runs out of work are cancelled,
    so a batch nested inside a saturated pool still finishes instead of deadlocking.
    """
    limit = max_concurrency if max_concurrency and max_concurrency > 0 else n
    results: list[tuple[bool, Any]] = [(False, None)] * n
    counter = itertools.count()

    def drain() -> None:
        while (i := next(counter)) < n:
            try:
                results[i] = (True, fn(i))
            except BaseException as exc:  # handed back to the caller, who decides
                results[i] = (False, exc)

    helpers = [submit(drain) for _ in range(min(limit, n) - 1)]
    drain()
    for helper in helpers:
        if not helper.cancel():
            helper.result()
    return results


async def gather_bounded(
    factories: Iterable[Callable[[], Awaitable[T]]],
    max_concurrency: int | None,
    return_exceptions: bool,
) -> list[T | BaseException]:
    """``asyncio.gather`` with at most ``max_concurrency`` awaitables running at once."""
    import asyncio

    items = list(factories)
    if not max_concurrency or max_concurrency >= len(items):
        return await asyncio.gather(*(f() for f in items), return_exceptions=return_exceptions)
    sem = asyncio.Semaphore(max_concurrency)

    async def bounded(factory: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await factory()

    return await asyncio.gather(*(bounded(f) for f in items), return_exceptions=return_exceptions)


def run_coroutine_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run an async-only step from sync code.

    Outside an event loop this is ``asyncio.run``. Inside one (a sync call made from async code on
    the loop's own thread) blocking would deadlock, so the coroutine runs on a private loop in a
    pool thread instead.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    ctx = contextvars.copy_context()
    return shared_executor().submit(ctx.run, asyncio.run, coro).result()
