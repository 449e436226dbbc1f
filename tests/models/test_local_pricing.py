"""A model on this machine (in process, or a server on a loopback address) costs 0 when it has no
known price, without the "no price is known" warning; a known price still applies."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator

import pytest

from maru.cache.memory import InMemoryCache
from maru.messages import AIMessage, Usage
from maru.models import OpenAIChat, ScriptedChatModel
from maru.tracing import tracing
from maru.usage import Budget, UnknownModelPriceWarning, cost_for, track
from maru.usage.prices import reset_prices

from .conftest import FakeChatServer


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    reset_prices()  # the unknown-price warning fires once per model: start from "never warned"
    yield
    reset_prices()


@pytest.fixture
def no_price_warning() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [w for w in caught if issubclass(w.category, UnknownModelPriceWarning)]


class LocalScripted(ScriptedChatModel):
    @property
    def local(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("base_url", "local"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://127.3.2.1/v1", True),
        ("http://192.168.1.20:8000/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://localhost.example.com/v1", False),
    ],
)
def test_openai_chat_is_local_on_a_loopback_base_url(base_url: str, local: bool) -> None:
    assert OpenAIChat("m", base_url=base_url).local is local


def test_remote_and_default_models_are_not_local() -> None:
    assert not OpenAIChat("gpt-4o", api_key="sk-x").local
    assert not ScriptedChatModel().local


def test_cost_for_prices_an_unknown_local_model_at_zero(no_price_warning: None) -> None:
    usage = Usage(1000, 100)
    assert cost_for("my-gguf", usage, local=True) == 0.0
    assert cost_for("gpt-4o", usage, local=True) == cost_for("gpt-4o", usage) > 0  # a proxy's price holds


def test_unknown_remote_model_still_warns_and_costs_none() -> None:
    with pytest.warns(UnknownModelPriceWarning):
        assert cost_for("my-remote-model", Usage(10, 10)) is None


def test_a_loopback_server_call_costs_zero_without_a_warning(
    server: FakeChatServer, no_price_warning: None
) -> None:
    model = OpenAIChat("smollm2", base_url=server.base_url)
    with track() as tracked, Budget(max_cost=0.01) as budget:  # no UnpricedModelError either
        model.invoke("hi")
        list(model.stream("hi"))
    assert tracked.requests == 2 and tracked.cost_known and tracked.total_cost == 0.0
    assert budget.spent_cost == 0.0 and budget.requests == 2


def test_a_known_price_applies_through_a_local_proxy(server: FakeChatServer) -> None:
    with track() as tracked:
        OpenAIChat("gpt-4o", base_url=server.base_url).invoke("hi")
    assert tracked.total_cost > 0


def test_cache_hits_of_a_local_model_save_nothing_and_do_not_warn(no_price_warning: None) -> None:
    model = LocalScripted(["fine"], cycle=True, model="tiny-gguf", cache=InMemoryCache())
    with track() as tracked:
        model.invoke("hi")
        model.invoke("hi")
    assert tracked.cache_hits == 1 and tracked.saved_cost == 0.0 and tracked.total_cost == 0.0


class _Sink:
    def __init__(self) -> None:
        self.runs: list = []

    def write(self, runs: list) -> None:
        self.runs.extend(runs)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_traces_price_a_local_model_at_zero(no_price_warning: None) -> None:
    sink = _Sink()
    reply = AIMessage("x", usage=Usage(5, 5))
    with tracing([sink]):
        LocalScripted([reply], model="tiny-gguf").invoke("hi")
        ScriptedChatModel([reply], model="tiny-gguf").invoke("hi")
    local, remote = (run.cost for run in sink.runs if run.kind == "llm")
    assert local == 0.0 and remote is None


@pytest.mark.real_model
def test_the_in_process_model_costs_zero_without_a_warning(no_price_warning: None) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        from llama_server import unavailable

        unavailable("llama-cpp-python")
    from maru.models.llamacpp import LlamaCppChat

    with track() as tracked:
        LlamaCppChat(max_tokens=2, n_ctx=512).invoke("hi")
    assert tracked.requests == 1 and tracked.cost_known and tracked.total_cost == 0.0
