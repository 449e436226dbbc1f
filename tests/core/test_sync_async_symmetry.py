"""Every primitive gives the same answer through all four doors: invoke, ainvoke, stream, astream."""

import asyncio

import pytest

from maru import assign, branch, parallel, passthrough, pick, route, runnable
from maru.core.chunks import gather


def inc(d):
    return {**d, "n": d["n"] + 1}


async def ainc(d):
    return {**d, "n": d["n"] + 1}


def flaky_factory():
    state = {"calls": 0}

    def flaky(d):
        state["calls"] += 1
        if state["calls"] % 2:
            raise ConnectionError("every other call fails")
        return d["n"]

    return flaky


def fails(d):
    raise ValueError("primary")


PRIMITIVES = {
    "sequence": lambda: runnable(inc) | inc | pick("n"),
    "async sequence": lambda: runnable(ainc) | ainc | pick("n"),
    "dict parallel": lambda: runnable(inc) | {"a": pick("n"), "b": lambda d: d["n"] * 2},
    "parallel()": lambda: parallel(a=runnable(ainc) | pick("n"), b=runnable(inc) | pick("n")),
    "passthrough": lambda: passthrough(),
    "assign": lambda: assign(m=lambda d: d["n"] * 10),
    "pick many": lambda: assign(m=lambda d: 1) | pick("n", "m"),
    "branch": lambda: branch((lambda d: d["n"] > 5, lambda d: "big"), lambda d: "small"),
    "route": lambda: route(lambda d: "odd" if d["n"] % 2 else "even", {"odd": pick("n"), "even": lambda d: 0}),
    "bind": lambda: runnable(lambda d, k=0: d["n"] + k).bind(k=7),
    "with_config": lambda: (runnable(inc) | pick("n")).with_config(tags=["x"], run_name="named"),
    "with_retry": lambda: runnable(flaky_factory()).with_retry(initial_delay=0, jitter=False),
    "with_fallbacks": lambda: runnable(fails).with_fallbacks([pick("n")]),
}


@pytest.mark.parametrize("name", PRIMITIVES)
def test_four_doors_agree(name):
    make = PRIMITIVES[name]
    value = {"n": 3}
    expected = make().invoke(value)

    async def async_doors():
        whole = await make().ainvoke(value)
        chunks = [c async for c in make().astream(value)]
        return whole, chunks

    awhole, achunks = asyncio.run(async_doors())
    assert awhole == expected
    assert gather(make().stream(value)) == expected
    assert gather(achunks) == expected
    assert make().batch([value, {"n": 8}]) == [expected, make().invoke({"n": 8})]
    assert asyncio.run(make().abatch([value])) == [expected]
