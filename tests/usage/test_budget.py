"""Budgets: reserve / commit / release, limits checked before the request, no overshoot under
concurrency, messages that say what happened."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from maru.errors import MaruError
from maru.messages import AIMessage, Usage
from maru.models import ScriptedChatModel
from maru.usage import (
    Budget,
    BudgetExceeded,
    UnpricedModelError,
    cost_of,
    count_message_tokens,
    current_scope,
    track,
)

M = 1_000_000


def model(name: str = "gpt-4o-mini", usage: Usage | None = None) -> ScriptedChatModel:
    reply = AIMessage("ok", usage=usage or Usage(100, 20))
    return ScriptedChatModel([reply], cycle=True, model=name, io_bound=True)


# ----------------------------------------------------------------------------- reserve / commit
def test_reserve_commit_release_accounting() -> None:
    b = Budget(max_tokens=10_000)
    r = b.reserve("gpt-4o", 300, 200)
    assert (r.input_tokens, r.output_tokens, r.tokens) == (300, 200, 500)
    assert b.reserved_tokens == 500 and b.reserved == Usage(300, 200) and b.in_flight == 1
    b.commit(r, Usage(300, 50), cost=0.001)
    assert b.reserved_tokens == 0 and b.in_flight == 0
    assert b.spent_tokens == 350 and b.spent_cost == pytest.approx(0.001) and b.requests == 1
    r2 = b.reserve("gpt-4o", 100, None)  # None: the default output reserve
    assert r2.output_tokens == 1024
    b.release(r2)
    b.release(r2)  # idempotent
    assert b.reserved_tokens == 0 and b.requests == 1 and b.spent_tokens == 350
    assert b.remaining() == {"tokens": 10_000 - 350, "cost": None, "requests": None}


def test_reserve_prices_the_request() -> None:
    b = Budget(max_cost=1.0)
    r = b.reserve("gpt-4o", 1000, 500)
    assert r.cost == pytest.approx(cost_of("gpt-4o", Usage(1000, 500)))
    assert b.reserved_cost == pytest.approx(r.cost)


def test_token_limit_message_says_spent_reserved_asked_and_which_limit() -> None:
    b = Budget(max_tokens=1000)
    b.commit(b.reserve("gpt-4o", 300, 100), Usage(300, 100), cost=None)  # spent 400
    b.reserve("gpt-4o", 200, 100)  # 300 in flight
    with pytest.raises(BudgetExceeded) as info:
        b.reserve("gpt-4o", 250, 100)
    err = info.value
    text = str(err)
    assert "max_tokens=1,000" in text
    assert "spent 400 tokens in 1 requests" in text
    assert "300 reserved by 1 in flight" in text
    assert "asks for 350 (250 input + 100 output reserved)" in text
    assert "'gpt-4o'" in text and "not sent" in text
    assert (err.limit, err.limit_value, err.spent, err.reserved, err.requested, err.model) == (
        "max_tokens", 1000, 400, 300, 350, "gpt-4o",
    )
    assert isinstance(err, MaruError)
    assert b.in_flight == 1  # the refused request holds nothing


def test_cost_limit() -> None:
    b = Budget(max_cost=0.01)
    b.commit(b.reserve("gpt-4o", 1000, 100), Usage(1000, 100), cost=0.0035)
    with pytest.raises(BudgetExceeded, match=r"max_cost=\$0\.0100") as info:
        b.reserve("gpt-4o", 1000, 1000)  # $0.0125 > $0.0065 left
    assert "spent $0.003500 in 1 requests" in str(info.value)
    assert "asks for up to $0.0125" in str(info.value)
    assert info.value.limit == "max_cost"
    b.reserve("gpt-4o", 1000, 100)  # $0.0035 fits


def test_request_limit() -> None:
    b = Budget(max_requests=2)
    r1 = b.reserve("m", 1, 1)
    b.reserve("m", 1, 1)
    with pytest.raises(BudgetExceeded, match="max_requests=2") as info:
        b.reserve("m", 1, 1)
    assert "0 sent, 2 in flight" in str(info.value)
    b.release(r1)  # a failed request does not count
    b.reserve("m", 1, 1)


def test_unpriced_model_with_a_cost_limit() -> None:
    with pytest.warns(UserWarning), pytest.raises(UnpricedModelError, match="register_price"):
        Budget(max_cost=1.0).reserve("mystery-model", 10, 10)
    lenient = Budget(max_cost=1.0, unknown_price="ignore")
    r = lenient.reserve("mystery-model", 10, 10)
    lenient.commit(r, Usage(10, 10), cost=None)
    assert lenient.unpriced_requests == 1 and lenient.spent_cost == 0
    assert issubclass(UnpricedModelError, BudgetExceeded)
    Budget(max_tokens=100).reserve("mystery-model", 10, 10)  # no cost limit: no price needed


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        Budget(max_tokens=-1)
    with pytest.raises(ValueError):
        Budget(unknown_price="maybe")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize(
    ("budget", "per_request"),
    [
        (Budget(max_tokens=500), (50, 50)),  # 100 tokens each: 5 fit
        (Budget(max_requests=5), (1, 1)),
        (Budget(max_cost=5 * (1000 * 2.5 + 1000 * 10) / M), (1000, 1000)),  # gpt-4o: 5 fit exactly
    ],
)
def test_parallel_reserves_cannot_overshoot(budget: Budget, per_request: tuple[int, int]) -> None:
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            budget.reserve("gpt-4o", *per_request)
            result = "ok"
        except BudgetExceeded:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5
    assert outcomes.count("refused") == 15
    assert budget.in_flight == 5


def test_parallel_model_calls_stop_at_the_limit() -> None:
    m = model()
    with Budget(max_requests=5) as b:
        results = m.batch([str(i) for i in range(20)], return_exceptions=True, max_concurrency=20)
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(refused) == 15
    assert len(m.calls) == 5  # refused requests never reached the model
    assert b.requests == 5 and b.in_flight == 0


def test_async_tasks_stop_at_the_limit() -> None:
    # each request reserves 8 input tokens (one-digit message + framing) + max_tokens=50, and uses
    # exactly that: 5 fit in 290 tokens
    m = model(usage=Usage(8, 50))
    assert count_message_tokens(["7"], "gpt-4o-mini") == 8

    async def main() -> list[object]:
        with Budget(max_tokens=5 * 58) as b:
            results = await asyncio.gather(*(m.ainvoke(str(i), max_tokens=50) for i in range(12)), return_exceptions=True)
        assert b.spent_tokens == 5 * 58
        return results

    results = asyncio.run(main())
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 7
    assert len(m.calls) == 5


# ----------------------------------------------------------------------------- with model calls
def test_budget_is_checked_before_the_request() -> None:
    m = model()
    with Budget(max_requests=2) as b:
        m.invoke("1")
        m.invoke("2")
        with pytest.raises(BudgetExceeded):
            m.invoke("3")
    assert len(m.calls) == 2 and b.requests == 2
    assert b.spent_tokens == 2 * 120
    assert current_scope.get() is None
    m.invoke("outside the budget")


def test_commit_uses_actual_usage_and_cost() -> None:
    m = model("gpt-4o", usage=Usage(1000, 200, 500))
    with Budget(max_cost=1.0) as b:
        m.invoke("x", max_tokens=300)
    assert b.spent_cost == pytest.approx(cost_of("gpt-4o", Usage(1000, 200, 500)))
    assert b.spent_tokens == 1200 and b.reserved_cost == 0


def test_nested_budgets_are_all_checked() -> None:
    m = model()
    with Budget(max_requests=1, name="outer") as outer, Budget(max_requests=10, name="inner") as inner:
        m.invoke("1")
        with pytest.raises(BudgetExceeded, match="budget 'outer' exceeded"):
            m.invoke("2")
    assert outer.requests == 1 and inner.requests == 1


def test_budget_and_tracker_together() -> None:
    m = model()
    with track() as t, Budget(max_requests=3):
        for i in range(5):
            with contextlib.suppress(BudgetExceeded):
                m.invoke(str(i))
    assert t.requests == 3


def test_stream_reserves_before_the_first_chunk() -> None:
    m = model()
    with Budget(max_requests=1):
        list(m.stream("a"))
        with pytest.raises(BudgetExceeded):
            next(iter(m.stream("b")))
    assert len(m.calls) == 1


def test_exported_from_maru_usage() -> None:
    import maru.usage

    assert maru.usage.BudgetExceeded is BudgetExceeded
    assert issubclass(BudgetExceeded, MaruError)
