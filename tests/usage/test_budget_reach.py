"""A budget reaches every model call started from its block, however the work was started: plain
threads, stdlib pools, asyncio tasks and executors, streams. 20 calls against ``max_requests=5``:
5 run, 15 are refused with ``BudgetExceeded`` in each case."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.usage import Budget, BudgetExceeded, UsageTracker, current_scope, track

CALLS = 20
ALLOWED = 5


def model() -> ScriptedChatModel:
    reply = AIMessage("fine, thanks", usage=Usage(10, 5))
    return ScriptedChatModel([reply], cycle=True, model="gpt-4o-mini", io_bound=True)


class Outcomes:
    """Counts calls that ran and calls that were refused, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ran = 0
        self.refused = 0

    def call(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BudgetExceeded:
            self.count(ran=False)
        else:
            self.count(ran=True)

    def count(self, *, ran: bool) -> None:
        with self._lock:
            if ran:
                self.ran += 1
            else:
                self.refused += 1


def invoke_in_threads(m: ScriptedChatModel, out: Outcomes) -> None:
    threads = [threading.Thread(target=out.call, args=(lambda: m.invoke("hi"),)) for _ in range(CALLS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def invoke_in_stdlib_pool(m: ScriptedChatModel, out: Outcomes) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: out.call(lambda: m.invoke("hi")), range(CALLS)))


def stream_in_threads(m: ScriptedChatModel, out: Outcomes) -> None:
    threads = [threading.Thread(target=out.call, args=(lambda: list(m.stream("hi")),)) for _ in range(CALLS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def asyncio_tasks_and_default_executor(m: ScriptedChatModel, out: Outcomes) -> None:
    async def task() -> None:
        try:
            await m.ainvoke("hi")
        except BudgetExceeded:
            out.count(ran=False)
        else:
            out.count(ran=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # half as tasks (they copy the context), half on the loop's default executor (it does not)
        tasks = [asyncio.create_task(task()) for _ in range(CALLS // 2)]
        blocking = [
            loop.run_in_executor(None, out.call, lambda: m.invoke("hi")) for _ in range(CALLS - CALLS // 2)
        ]
        await asyncio.gather(*tasks, *blocking)

    asyncio.run(main())


def async_streams_in_a_thread(m: ScriptedChatModel, out: Outcomes) -> None:
    async def consume() -> None:
        try:
            async for _ in m.astream("hi"):
                pass
        except BudgetExceeded:
            out.count(ran=False)
        else:
            out.count(ran=True)

    async def main() -> None:
        await asyncio.gather(*(consume() for _ in range(CALLS)))

    th = threading.Thread(target=asyncio.run, args=(main(),))
    th.start()
    th.join()


@pytest.mark.parametrize(
    "start",
    [
        invoke_in_threads,
        invoke_in_stdlib_pool,
        stream_in_threads,
        asyncio_tasks_and_default_executor,
        async_streams_in_a_thread,
    ],
)
def test_work_started_from_the_block_is_held_to_the_budget(start: Callable[..., None]) -> None:
    m = model()
    out = Outcomes()
    with Budget(max_requests=ALLOWED) as budget:
        start(m, out)
    assert (out.ran, out.refused) == (ALLOWED, CALLS - ALLOWED)
    assert len(m.calls) == ALLOWED  # refused requests never reached the model
    assert budget.requests == ALLOWED and budget.in_flight == 0


def test_a_tracker_reaches_plain_threads_too() -> None:
    m = model()
    out = Outcomes()
    with track() as t:
        invoke_in_threads(m, out)
    assert t.requests == CALLS


def test_nothing_is_counted_once_the_block_is_over() -> None:
    m = model()
    with Budget(max_requests=1) as budget:
        pass
    out = Outcomes()
    invoke_in_threads(m, out)
    assert out.ran == CALLS and budget.requests == 0


def test_a_thread_with_its_own_scope_keeps_the_outer_budget() -> None:
    # the thread enters a tracker of its own: the process-wide budget still applies inside it
    m = model()
    own = UsageTracker()
    out = Outcomes()

    def worker() -> None:
        with own:
            for _ in range(CALLS):
                out.call(lambda: m.invoke("hi"))
        assert current_scope.get() is None

    with Budget(max_requests=ALLOWED):
        th = threading.Thread(target=worker)
        th.start()
        th.join()
    assert (out.ran, out.refused) == (ALLOWED, CALLS - ALLOWED)
    assert own.requests == ALLOWED


def test_sibling_asyncio_tasks_on_the_same_loop_are_not_charged() -> None:
    # a task that was not started from the block (it runs beside it on the same loop) is not
    # inside the budget: the process-wide reach is for threads without any context of their own
    m = model()

    async def main() -> int:
        ready, done = asyncio.Event(), asyncio.Event()

        async def sibling() -> int:
            await ready.wait()
            for _ in range(CALLS):
                await m.ainvoke("hi")
            done.set()
            return CALLS

        async def budgeted() -> None:
            with Budget(max_requests=1):
                ready.set()
                await done.wait()

        ran, _ = await asyncio.gather(sibling(), budgeted())
        return ran

    assert asyncio.run(main()) == CALLS


def test_a_block_left_in_another_task_stops_reaching_threads() -> None:
    # entered in one task, exited in another (as a framework's dependency with `yield` may do):
    # the exit cannot restore the first task's context, but the block must stop reaching threads
    m = model()
    budget = Budget(max_requests=0)

    async def main() -> None:
        async def enter() -> None:
            budget.__enter__()

        async def leave() -> None:
            budget.__exit__(None, None, None)

        await asyncio.create_task(enter())
        await asyncio.create_task(leave())

    asyncio.run(main())
    out = Outcomes()
    invoke_in_threads(m, out)
    assert out.ran == CALLS
