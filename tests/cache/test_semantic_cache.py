"""SemanticCache with a deterministic bag-of-words embedding (see conftest.HashEmbeddings)."""

import asyncio
import math

import pytest

from maru.cache import CacheRequest, SemanticCache
from maru.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage

from .conftest import FakeClock, HashEmbeddings, request, response, streamed_response


def cosine(emb: HashEmbeddings, a: str, b: str) -> float:
    va, vb = emb._vector(a), emb._vector(b)
    return sum(x * y for x, y in zip(va, vb, strict=True)) / math.sqrt(
        sum(x * x for x in va) * sum(y * y for y in vb)
    )


@pytest.fixture
def emb():
    return HashEmbeddings()


def test_paraphrase_with_the_same_entities_and_numbers_hits(emb):
    cache = SemanticCache(emb, threshold=0.9)
    cache.update(request("What is the capital of France?"), response("Paris"))
    similar = "What is the capital city of France?"
    assert cosine(emb, similar, "What is the capital of France?") >= 0.9
    hit = cache.lookup(request(similar))
    assert hit is not None and hit.message.content == "Paris"
    assert cache.stats["semantic_hits"] == 1


def test_below_the_threshold_is_a_miss(emb):
    cache = SemanticCache(emb, threshold=0.9)
    cache.update(request("What is the capital of France?"), response("Paris"))
    other = "Which river flows through the capital of France?"
    assert cosine(emb, other, "What is the capital of France?") < 0.9
    assert cache.lookup(request(other)) is None


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Is X safe?", "Is X not safe?"),
        ("What were the sales in 2023?", "What were the sales in 2024?"),
        ("What is the capital of France?", "What is the capital of Spain?"),
        ("이 약은 어린이가 먹어도 안전한가요?", "이 약은 어린이가 먹어도 안전하지 않은가요?"),
    ],
)
def test_guard_refuses_close_questions_that_ask_something_else(emb, stored, asked):
    threshold = 0.7
    assert cosine(emb, stored, asked) >= threshold  # the embeddings alone would match ...
    unguarded = SemanticCache(emb, threshold=threshold, guard=False)
    unguarded.update(request(stored), response("stored answer"))
    assert unguarded.lookup(request(asked)) is not None  # ... and return the wrong answer

    guarded = SemanticCache(emb, threshold=threshold)
    guarded.update(request(stored), response("stored answer"))
    assert guarded.lookup(request(asked)) is None
    assert guarded.stats["refused"] == 1


def test_a_refused_best_candidate_falls_through_to_a_compatible_one(emb):
    cache = SemanticCache(emb, threshold=0.7)
    cache.update(request("What were the sales in 2024?"), response("2024 figures"))
    cache.update(request("So what were our sales in 2023"), response("2023 figures"))
    asked = "What were the sales in 2023?"
    # the 2024 entry is the closer one by embedding, but asks about another year
    assert cosine(emb, asked, "What were the sales in 2024?") > cosine(
        emb, asked, "So what were our sales in 2023"
    )
    assert cache.lookup(request(asked)).message.content == "2023 figures"


def test_exact_match_needs_no_embedding_and_an_unknown_context_none_either(emb):
    cache = SemanticCache(emb)
    cache.update(request("hello there"), response("hi"))
    assert emb.calls == ["hello there"]
    assert cache.lookup(request("hello there")).message.content == "hi"
    assert cache.lookup(request("hello there", system="another system prompt")) is None
    assert emb.calls == ["hello there"]  # neither lookup embedded anything
    assert cache.stats["exact_hits"] == 1


def test_the_update_after_a_miss_reuses_the_lookups_embedding(emb):
    cache = SemanticCache(emb)
    cache.update(request("first question"), response())
    emb.calls.clear()
    assert cache.lookup(request("second question about cats")) is None
    cache.update(request("second question about cats"), response())
    assert emb.calls == ["second question about cats"]


def test_namespaces_are_isolated(emb):
    tenant_a = SemanticCache(emb, namespace="a")
    tenant_b = tenant_a.with_namespace("b")
    tenant_a.update(request("What is the capital of France?"), response("Paris (a)"))
    assert tenant_b.lookup(request("What is the capital of France?")) is None  # not even exact
    assert tenant_b.lookup(request("What is the capital city of France?")) is None
    tenant_b.update(request("What is the capital of France?"), response("Paris (b)"))
    assert tenant_a.lookup(request("What is the capital of France?")).message.content == "Paris (a)"
    assert tenant_b.lookup(request("What is the capital of France?")).message.content == "Paris (b)"
    tenant_a.clear()
    assert len(tenant_a) == 0 and len(tenant_b) == 1


def test_different_system_prompts_or_parameters_are_isolated(emb):
    cache = SemanticCache(emb, threshold=0.5)
    cache.update(
        request("What is the capital of France?", system="Answer in French."), response("Paris")
    )
    assert (
        cache.lookup(request("What is the capital city of France?", system="Answer in Korean."))
        is None
    )
    assert (
        cache.lookup(
            request(
                "What is the capital city of France?", system="Answer in French.", temperature=1.0
            )
        )
        is None
    )
    assert (
        cache.lookup(request("What is the capital city of France?", system="Answer in French."))
        is not None
    )


def test_earlier_turns_and_tool_turns_are_part_of_the_context(emb):
    cache = SemanticCache(emb, threshold=0.5)
    system = SystemMessage("You are a weather bot.")
    question = HumanMessage("What is the weather in Seoul?")
    first = CacheRequest("m", [system, question], {"model": "m"})
    cache.update(first, response("call the tool"))
    # the agent's second request: same question, now followed by the tool call and its result
    call = AIMessage("", tool_calls=[ToolCall("weather", {"city": "Seoul"}, "c1")])
    second = CacheRequest(
        "m", [system, question, call, ToolMessage("sunny", tool_call_id="c1")], {"model": "m"}
    )
    assert second.prompt_text == first.prompt_text
    assert cache.lookup(second) is None  # must not answer the tool loop with the first tool call
    # and a different earlier turn changes the context too
    other_history = CacheRequest(
        "m",
        [
            system,
            HumanMessage("hi"),
            AIMessage("hello"),
            HumanMessage("What is the weather in Seoul?"),
        ],
        {"model": "m"},
    )
    assert cache.lookup(other_history) is None


def test_lru_eviction_and_ttl(emb):
    clock = FakeClock()
    cache = SemanticCache(emb, maxsize=3, ttl=100, clock=clock)
    for q in ("alpha one", "bravo two", "charlie three"):
        cache.update(request(q), response(q))
    assert cache.lookup(request("alpha one")) is not None  # bravo is now least recent
    cache.update(request("delta four"), response("delta four"))
    assert len(cache) == 3
    assert cache.lookup(request("bravo two")) is None
    clock.advance(100)
    assert cache.lookup(request("alpha one")) is None
    assert cache.lookup(request("delta four")) is None
    assert len(cache) == 1  # the lookups dropped what they found expired


def test_many_entries_in_one_group_stay_consistent_through_evictions(emb):
    cache = SemanticCache(emb, maxsize=50, threshold=0.99)
    for i in range(200):
        cache.update(request(f"question number {i} about topic{i}"), response(str(i)))
    assert len(cache) == 50
    for i in range(150, 200):  # each survivor is found by a semantic (non-exact) lookup
        hit = cache.lookup(request(f"question number {i} about topic{i}?"))
        assert hit is not None and hit.message.content == str(i)
    assert cache.stats["semantic_hits"] == 50


def test_streamed_responses_round_trip(emb):
    cache = SemanticCache(emb)
    cache.update(request("weather?"), streamed_response())
    assert cache.lookup(request("weather?")) == streamed_response()


def test_dimension_change_is_a_clear_error(emb):
    cache = SemanticCache(emb)
    cache.update(request("one"), response())

    class Small(HashEmbeddings):
        dim = 8

    other = cache.with_namespace("x")
    other.embeddings = Small()
    with pytest.raises(ValueError, match="8-dimensional"):
        other.update(request("two"), response())


def test_async_uses_aembed_query(emb):
    cache = SemanticCache(emb, threshold=0.9)

    async def main():
        await cache.aupdate(request("What is the capital of France?"), response("Paris"))
        return await cache.alookup(request("What is the capital city of France?"))

    assert asyncio.run(main()).message.content == "Paris"


def test_arguments_are_checked(emb):
    with pytest.raises(ValueError, match="threshold"):
        SemanticCache(emb, threshold=1.5)
    with pytest.raises(ValueError, match="maxsize"):
        SemanticCache(emb, maxsize=0)


def test_threads_share_one_semantic_cache(emb):
    import threading

    cache = SemanticCache(emb, maxsize=100, threshold=0.95)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(300):
                k = (n * 7 + i) % 150
                hit = cache.lookup(request(f"tell me about item {k} please"))
                if hit is None:
                    cache.update(request(f"tell me about item {k} please"), response(f"item{k}"))
                else:
                    assert hit.message.content == f"item{k}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 100
    group = next(iter(cache._store.groups.values()))
    assert sorted(e.row for e in group.entries) == list(range(100))  # rows stayed packed
