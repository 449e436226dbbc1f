"""The bundled SmolLM2-135M run in process by llama.cpp: every path of the ChatModel interface,
against the real model. Assertions are on structure and protocol, never on wording."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from maru import runnable
from maru.agents import ToolCallingAgent
from maru.cache import InMemoryCache
from maru.messages import AIMessage
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def model(local_model):
    return local_model(max_tokens=24, n_ctx=2048)


class City(BaseModel):
    """A city and the country it is in."""

    name: str
    country: str


def get_weather(city: str) -> str:
    """Get the current weather of a city."""
    return f"sunny in {city}"


def test_invoke_is_deterministic_and_counts_usage(model):
    first = model.invoke("What is the capital of France?")
    again = model.invoke("What is the capital of France?")
    assert isinstance(first, AIMessage) and first.text.strip()
    assert first.text == again.text  # greedy decoding at temperature 0
    assert first.usage.input_tokens > 5 and 0 < first.usage.output_tokens <= 24
    assert first.response_metadata["model_name"].startswith("SmolLM2-135M-Instruct")
    assert model.provider == "llama.cpp" and model.local


def test_stream_adds_up_to_invoke_and_ends_with_usage(model):
    chunks = list(model.stream("Name three colours."))
    whole = model.invoke("Name three colours.")
    assert len(chunks) > 2
    assert "".join(c.content for c in chunks) == whole.text
    assert chunks[-1].usage.output_tokens == whole.usage.output_tokens


def test_chain_batch_and_async(model):
    chain = ChatPromptTemplate.from_messages([("human", "Say {word}.")]) | model | StrOutputParser()
    answers = chain.batch([{"word": "yes"}, {"word": "no"}, {"word": "maybe"}], max_concurrency=3)
    assert len(answers) == 3 and all(isinstance(a, str) and a for a in answers)
    assert asyncio.run(chain.ainvoke({"word": "yes"})) == answers[0]
    streamed = "".join(chain.stream({"word": "no"}))
    assert streamed == answers[1]


def test_structured_output_returns_a_valid_object(model):
    city = model.with_structured_output(City).invoke("Paris is the capital of France.")
    assert isinstance(city, City) and city.name and city.country


def test_json_object_format_is_parseable(model):
    import json

    reply = model.invoke("Give a JSON object with a key 'a'.", response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.text), dict)


def test_forced_tool_calls(model):
    for choice in ("required", "get_weather"):
        reply = model.bind_tools([get_weather], tool_choice=choice).invoke("Weather in Seoul?")
        assert [c.name for c in reply.tool_calls] == ["get_weather"]
        assert set(reply.tool_calls[0].args) == {"city"}


def test_agent_calls_its_tool_and_answers(model):
    agent = ToolCallingAgent(model, [get_weather], first_tool_choice="required", max_steps=3)
    result = agent.invoke("What is the weather in Busan?")
    assert result.steps[0].message.tool_calls and result.steps[1].kind == "tool"
    assert result.steps[1].ok and result.output.strip()


def test_cache_hit_and_stream_replay(model):
    from maru.models.llamacpp import LlamaCppChat

    cached = LlamaCppChat(max_tokens=12, cache=InMemoryCache())
    cached._llama = model.llama()  # share the loaded weights: only the cache differs
    first = cached.invoke("Hi!")
    hit = cached.invoke("Hi!")
    assert hit.text == first.text and hit.response_metadata.get("cached")
    streamed = list(cached.stream("Hello!"))
    replay = list(cached.stream("Hello!"))
    assert [c.content for c in replay] == [c.content for c in streamed]


def test_parallel_threads_share_one_context_safely(model):
    step = runnable(lambda q: model.invoke(q).text, io_bound=True)
    answers = step.batch(["One?", "Two?", "Three?", "Four?"], max_concurrency=4)
    assert answers == [model.invoke(q).text for q in ["One?", "Two?", "Three?", "Four?"]]


def test_the_model_loads_after_the_vector_index_was_opened(tmp_path, local_model):
    """Seen in `maru ask`: with usearch imported first, llama.cpp failed to read the model's
    vocabulary (std::bad_cast, "Failed to load model from file"). A fresh process, that order."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from maru.rag.stores.local import LocalStore\n"
        "from maru.models.embeddings import Embeddings\n"
        "class Fixed(Embeddings):\n"
        "    def embed_documents(self, texts): return [[1.0, 0.0] for _ in texts]\n"
        "    def embed_query(self, text): return [1.0, 0.0]\n"
        "store = LocalStore(sys.argv[1], embeddings=Fixed())\n"
        "store.add_texts(['a passage'])\n"
        "import usearch.index\n"
        "from maru.models import LlamaCppChat\n"
        "print(LlamaCppChat(max_tokens=2).invoke('hi').usage.output_tokens)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip()) >= 1
