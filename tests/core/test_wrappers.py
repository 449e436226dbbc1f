"""Retry, fallbacks, bind and with_config."""

import asyncio

import pytest

from maru import runnable
from maru.core import listen
from maru.core.wrappers import Binding, Retry


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns the input."""

    def __init__(self, failures, exc=ConnectionError):
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return x


def test_retry_recovers_after_listed_failures(monkeypatch):
    sleeps = []
    monkeypatch.setattr("maru.core.wrappers.time.sleep", sleeps.append)
    flaky = Flaky(2)
    step = runnable(flaky).with_retry(retry_on=ConnectionError, max_attempts=3, initial_delay=0.1, jitter=False)
    assert step.invoke("ok") == "ok"
    assert flaky.calls == 3
    assert sleeps == [0.1, 0.2]  # exponential backoff


def test_retry_does_not_retry_unlisted_exceptions(monkeypatch):
    monkeypatch.setattr("maru.core.wrappers.time.sleep", lambda s: None)
    flaky = Flaky(1, exc=ValueError)
    step = runnable(flaky).with_retry(retry_on=ConnectionError)
    with pytest.raises(ValueError):
        step.invoke(1)
    assert flaky.calls == 1


def test_retry_gives_up_after_max_attempts_with_a_note(monkeypatch):
    monkeypatch.setattr("maru.core.wrappers.time.sleep", lambda s: None)
    flaky = Flaky(10)
    step = runnable(flaky).with_retry(max_attempts=4)
    with pytest.raises(ConnectionError) as info:
        step.invoke(1)
    assert flaky.calls == 4
    assert "gave up after 4 attempt(s)" in "\n".join(info.value.__notes__)


def test_retry_delay_is_capped_and_jittered():
    r = Retry(runnable(lambda x: x), retry_on=(Exception,), max_attempts=10, initial_delay=1.0,
              max_delay=5.0, backoff=2.0, jitter=True)
    delays = [r.delay(k) for k in range(1, 8)]
    assert all(0.5 <= d / min(5.0, 2 ** (k - 1)) < 1.5 for k, d in enumerate(delays, 1))
    no_jitter = Retry(runnable(lambda x: x), retry_on=(Exception,), max_attempts=10, initial_delay=1.0,
                      max_delay=5.0, backoff=2.0, jitter=False)
    assert [no_jitter.delay(k) for k in range(1, 6)] == [1, 2, 4, 5, 5]


def test_async_retry(monkeypatch):
    async def no_sleep(s):
        return None

    monkeypatch.setattr("maru.core.wrappers._asleep", no_sleep)
    calls = []

    @runnable
    async def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return x * 2

    assert asyncio.run(flaky.with_retry(retry_on=TimeoutError).ainvoke(4)) == 8
    assert len(calls) == 3


def test_retry_of_a_stream_only_before_first_chunk(monkeypatch):
    monkeypatch.setattr("maru.core.wrappers.time.sleep", lambda s: None)
    attempts = []

    def gen(_):
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("before first chunk")
        yield "a"
        yield "b"

    assert list(runnable(gen).with_retry().stream(None)) == ["a", "b"]
    assert len(attempts) == 2

    def breaks_midway(_):
        yield "a"
        raise ConnectionError("after first chunk")

    received = []
    with pytest.raises(ConnectionError):
        for chunk in runnable(breaks_midway).with_retry().stream(None):
            received.append(chunk)
    assert received == ["a"]  # not repeated


def test_fallbacks_on_listed_exceptions():
    def broken(x):
        raise ConnectionError("down")

    chain = runnable(broken).with_fallbacks([lambda x: f"backup {x}"])
    assert chain.invoke(1) == "backup 1"
    assert asyncio.run(chain.ainvoke(2)) == "backup 2"
    assert list(chain.stream(3)) == ["backup 3"]

    only_timeouts = runnable(broken).with_fallbacks([lambda x: "backup"], exceptions=TimeoutError)
    with pytest.raises(ConnectionError):
        only_timeouts.invoke(1)


def test_fallbacks_all_failing_raise_first_with_notes():
    def fail_a(x):
        raise ConnectionError("primary down")

    def fail_b(x):
        raise RuntimeError("backup down")

    with pytest.raises(ConnectionError, match="primary down") as info:
        runnable(fail_a).with_fallbacks([fail_b]).invoke(1)
    assert any("backup down" in note for note in info.value.__notes__)


def test_fallback_sees_exception_under_key():
    def broken(d):
        raise ValueError("bad")

    chain = runnable(broken).with_fallbacks(
        [lambda d: f"{d['q']} after {type(d['error']).__name__}"], exception_key="error"
    )
    assert chain.invoke({"q": "x"}) == "x after ValueError"


def test_bind_passes_kwargs_and_call_kwargs_win():
    def fmt(x, sep="-", end=""):
        return sep.join(x) + end

    step = runnable(fmt).bind(sep="+").bind(end="!")
    assert isinstance(step, Binding) and not isinstance(step.bound, Binding)  # folded, not nested
    assert step.invoke(["a", "b"]) == "a+b!"
    assert step.invoke(["a", "b"], sep="*") == "a*b!"
    assert asyncio.run(step.ainvoke(["a", "b"])) == "a+b!"


def test_with_config_sets_run_name_tags_and_metadata():
    events = []
    inner = runnable(lambda x: x + 1, name="inner")
    chain = (inner | (lambda x: x * 2)).with_config(run_name="my_chain", tags=["t1"], metadata={"user": "u"})
    with listen(events.append):
        assert chain.invoke(1) == 4
    starts = [e for e in events if e.phase == "start"]
    assert starts[0].name == "my_chain"
    assert [e.name for e in starts[1:]] == ["inner", "lambda"]  # run_name is not inherited
    assert all(e.tags == ["t1"] and e.metadata == {"user": "u"} for e in starts)  # tags are


def test_with_config_rejects_unknown_keys():
    with pytest.raises(TypeError, match="max_concurency"):
        runnable(lambda x: x).with_config(max_concurency=2)


def test_binding_reads_through_to_wrapped_attributes():
    chain = runnable(lambda x: x) | (lambda x: x)
    assert chain.with_config(tags=["a"]).steps == chain.steps
