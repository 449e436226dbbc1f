"""``OpenAIChat`` through the official SDK against a real OpenAI-compatible server: llama.cpp's own
(``python -m llama_cpp.server``) with the bundled SmolLM2-135M-Instruct, started by the session
fixture ``llama_server`` (tests/llama_server.py).

Assertions are on structure and protocol — types, counts, what the server answered (its access log)
— never on wording: a 135M model's words are not the point. Replies are kept short (``max_tokens``).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from maru.cache.memory import InMemoryCache
from maru.messages import AIMessage
from maru.models import OpenAIChat
from maru.models import adaptive as adaptive_module
from maru.models import openai as openai_module
from maru.models.tools_schema import args_model
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate
from maru.usage import Budget, BudgetExceeded, UnknownModelPriceWarning, track

pytestmark = pytest.mark.real_model

QUESTION = {"city": "Paris"}
PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You are a travel guide. Answer in one short sentence."), ("human", "What should I see in {city}?")]
)


class City(BaseModel):
    """A city and the country it is in."""

    name: str
    country: str


def weather(city: str) -> str:
    """Get the current weather of a city."""
    return f"sunny in {city}"


def local_time(city: str) -> str:
    """Get the current time in a city."""
    return f"noon in {city}"


@pytest.fixture(autouse=True)
def _fresh_endpoint_memory() -> Iterator[None]:
    """Each test sees the server as new, so what it asserts about refusals happens in the test."""
    adaptive_module._working.forget()
    openai_module._REQUIRED_REFUSED.forget()
    yield


def chat(server: Any, **options: Any) -> OpenAIChat:
    options = {"temperature": 0, "max_tokens": 8, **options}
    return OpenAIChat(server.model, base_url=server.base_url, api_key="none", **options)


@pytest.fixture(scope="module")
def model(llama_server: Any) -> OpenAIChat:
    return chat(llama_server)


# --------------------------------------------------------------------------- prompt | model | parser
def test_chain_invoke_stream_batch_and_async(model: OpenAIChat) -> None:
    chain = PROMPT | model | StrOutputParser()
    text = chain.invoke(QUESTION)
    assert isinstance(text, str) and text.strip()
    pieces = list(chain.stream(QUESTION))
    assert len(pieces) > 1 and "".join(pieces) == text  # greedy decoding: the same reply, in pieces
    assert chain.batch([QUESTION, {"city": "Seoul"}], max_concurrency=2)[0] == text

    async def go() -> tuple[str, list[str]]:
        return await chain.ainvoke(QUESTION), [piece async for piece in chain.astream(QUESTION)]

    again, apieces = asyncio.run(go())
    assert again == text and "".join(apieces) == text


def test_streams_are_counted_and_a_local_model_costs_nothing(model: OpenAIChat) -> None:
    """llama.cpp's server sends no usage on streams (it ignores ``stream_options``), so maru counts
    the tokens itself; a loopback server's unpriced model costs 0, without a warning."""
    assert model.local
    with warnings.catch_warnings(record=True) as caught, track() as tracked:
        warnings.simplefilter("always")
        chunks = list(model.stream("Say hello."))

        async def go() -> list[Any]:
            return [chunk async for chunk in model.astream("Say hello.")]

        achunks = asyncio.run(go())
    assert chunks and achunks
    counted = tracked.by_model()[model.model_name]
    assert counted.requests == counted.streamed == 2
    assert counted.input_tokens > 2 and counted.output_tokens > 0
    assert tracked.cost_known and tracked.total_cost == 0.0
    assert not [w for w in caught if issubclass(w.category, UnknownModelPriceWarning)]


# --------------------------------------------------------------------------- structured output
def test_structured_output_auto_falls_back_from_json_schema_once(llama_server: Any) -> None:
    model = chat(llama_server, max_tokens=48)
    structured = model.with_structured_output(City)
    before = len(llama_server.statuses())
    city = structured.invoke("Paris is the capital of France.")
    assert isinstance(city, City) and city.name and city.country
    refused = llama_server.statuses()[before:]
    assert refused[0] == 500 and refused[-1] == 200  # json_schema refused (the SDK retried), then json_object
    assert adaptive_module._working.start(adaptive_module.endpoint_key(model)) == 1
    before = len(llama_server.statuses())
    assert isinstance(structured.invoke("Seoul is the capital of Korea."), City)
    assert 500 not in llama_server.statuses()[before:]  # remembered: no second refusal


def test_structured_output_through_a_forced_tool(llama_server: Any) -> None:
    city = chat(llama_server, max_tokens=48).with_structured_output(City, method="tool").invoke(
        "Paris is the capital of France."
    )
    assert isinstance(city, City)


def test_json_schema_alone_is_refused_by_this_server(llama_server: Any) -> None:
    with pytest.raises(openai.InternalServerError) as refused:
        chat(llama_server, max_retries=0).with_structured_output(City, method="json_schema").invoke("Paris")
    assert refused.value.status_code == 500 and "response_format" in str(refused.value)


# --------------------------------------------------------------------------- tool calls
def assert_valid_call(reply: AIMessage, *tools: Any) -> None:
    assert isinstance(reply, AIMessage) and reply.tool_calls
    by_name = {tool.__name__: tool for tool in tools}
    call = reply.tool_calls[0]
    assert call.name in by_name
    args_model(by_name[call.name]).model_validate(call.args)  # the arguments fit the tool's schema


def test_a_named_tool_choice_returns_a_valid_call(llama_server: Any) -> None:
    bound = chat(llama_server, max_tokens=32).bind_tools([weather, local_time], tool_choice="weather")
    reply = bound.invoke("What is the weather in Paris?")
    assert_valid_call(reply, weather)
    assert reply.tool_calls[0].name == "weather"


def test_required_with_one_tool_is_sent_as_that_tool(llama_server: Any) -> None:
    before = len(llama_server.statuses())
    reply = chat(llama_server, max_tokens=32).bind_tools([weather], tool_choice="required").invoke("Paris?")
    assert_valid_call(reply, weather)
    assert llama_server.statuses()[before:] == [200]


def test_required_with_several_tools_is_emulated_after_one_refusal(llama_server: Any) -> None:
    bound = chat(llama_server, max_tokens=32).bind_tools([weather, local_time], tool_choice="required")
    before = len(llama_server.statuses())
    assert_valid_call(bound.invoke("What is the weather in Paris?"), weather, local_time)
    answered = llama_server.statuses()[before:]
    assert answered[0] == 500 and answered[-1] == 200  # "required" refused, then "auto" and a note
    before = len(llama_server.statuses())
    chunks = list(bound.stream("What is the weather in Seoul?"))
    assert_valid_call(sum(chunks[1:], chunks[0]).to_message(), weather, local_time)
    # remembered: no second refusal. This server cannot stream tools under "auto" (it sends an
    # empty stream), so the stream is asked again without streaming: 200, 200.
    assert llama_server.statuses()[before:] == [200, 200]


# --------------------------------------------------------------------------- cache, budgets
def test_cache_hit_and_stream_replay(llama_server: Any) -> None:
    model = chat(llama_server, cache=InMemoryCache())
    before = len(llama_server.statuses())
    first = model.invoke("Name a colour.")
    hit = model.invoke("Name a colour.")
    assert hit.text == first.text and hit.response_metadata.get("cached") is True
    chunks = list(model.stream("Name a fruit."))
    replay = list(model.stream("Name a fruit."))
    assert [c.content for c in replay] == [c.content for c in chunks]
    assert all(c.response_metadata.get("cached") for c in replay)
    assert len(llama_server.statuses()) - before == 2  # one request each; the hits never left


def test_budget_holds_under_parallel_real_calls(model: OpenAIChat) -> None:
    questions = [f"Count to {n}." for n in range(4)]
    with track() as tracked, Budget(max_tokens=10_000) as budget:
        replies = model.batch(questions, max_concurrency=4)
    spent = sum(r.usage.input_tokens + r.usage.output_tokens for r in replies)
    assert budget.requests == 4 and budget.spent_tokens == spent
    assert tracked.total.input_tokens + tracked.total.output_tokens == spent
    with Budget(max_requests=2) as tight:
        outcomes = model.batch(questions, max_concurrency=4, return_exceptions=True)
    assert sum(isinstance(o, AIMessage) for o in outcomes) == 2
    assert sum(isinstance(o, BudgetExceeded) for o in outcomes) == 2
    assert tight.requests == 2 and tight.remaining()["requests"] == 0
