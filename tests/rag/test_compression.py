"""Contextual compression: batched LLM extractor and filter, embeddings and redundancy filters,
pipelines, and the retriever around them."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from maru.errors import ConfigurationError
from maru.models.embeddings import Embeddings
from maru.models.scripted import ScriptedChatModel
from maru.rag import Document
from maru.rag.retrievers.base import Retriever
from maru.rag.retrievers.compression import (
    CompressorPipeline,
    ContextualCompressionRetriever,
    EmbeddingsFilter,
    LLMExtractor,
    LLMFilter,
    RedundancyFilter,
    parse_sections,
    parse_verdicts,
)


class WordEmbeddings(Embeddings):
    """Bag of words over a fixed vocabulary: similarity is word overlap. Records batch sizes."""

    VOCAB = ["cat", "dog", "fish", "car", "road", "sun", "moon", "tea"]

    def __init__(self):
        self.batches = []

    def embed_documents(self, texts):
        self.batches.append(len(texts))
        return [[float(w in t.lower().split()) for w in self.VOCAB] for t in texts]


class Fixed(Retriever):
    def __init__(self, docs):
        self.docs = docs

    def retrieve(self, query):
        return [Document(d.text, dict(d.metadata), d.id) for d in self.docs]


def docs_numbered(n, words=30):
    return [Document(" ".join([f"doc{i}"] * words), {"i": i}, f"d{i}") for i in range(n)]


def doc_ids_in(messages):
    return [int(x) for x in re.findall(r'<doc id="(\d+)">', messages[-1].text)]


# ------------------------------------------------------------------ parsing
def test_parse_sections_accepts_several_header_styles():
    reply = (
        "Sure, here you go.\n[1]\nThe cat sat.\n\n**[Document 2]**\nNO_OUTPUT\n"
        "### 3\nDogs bark.\n</doc>\nDocument 4: Fish swim.\n<doc id=\"5\">Sun</doc>\n[9]\nout of range"
    )
    assert parse_sections(reply, 5) == {
        1: "The cat sat.", 2: "NO_OUTPUT", 3: "Dogs bark.", 4: "Fish swim.", 5: "Sun",
    }


def test_parse_verdicts_is_lenient():
    reply = "1: yes\n2 - No\n[3] relevant\nDocument 4: irrelevant\n5. YES\n5: no\n7: yes"
    assert parse_verdicts(reply, 6) == {1: True, 2: False, 3: True, 4: False, 5: True}


# ------------------------------------------------------------------ LLM extractor
def extract_all(messages):
    """Answers every doc in the prompt: even numbers NO_OUTPUT, odd ones a first-word extract."""
    parts = []
    for n, body in re.findall(r'<doc id="(\d+)">\n(.*?)\n</doc>', messages[-1].text, re.S):
        parts.append(f"[{n}]\n" + ("NO_OUTPUT" if int(n) % 2 == 0 else body.split()[0]))
    return "\n".join(parts)


def test_extractor_batches_under_the_token_budget():
    docs = docs_numbered(10, words=40)
    model = ScriptedChatModel([extract_all], cycle=True)
    extractor = LLMExtractor(model, max_tokens_per_batch=600, max_docs_per_batch=8)
    out = extractor.compress(docs, "which doc?")
    batches = extractor.batches(docs, "which doc?")
    assert len(model.calls) == len(batches) > 1  # several docs per call, more than one call
    assert len(batches) < len(docs)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert all(len(doc_ids_in(c.messages)) == len(b) for c, b in zip(model.calls, batches, strict=False))
    # within each batch the first (odd-numbered) document survives as its extract
    assert [d.text for d in out] == [docs[b[i]].text.split()[0] for b in batches for i in range(0, len(b), 2)]
    assert all(d.id and d.metadata for d in out)


def test_extractor_one_call_for_everything_under_a_big_budget_and_doc_cap():
    docs = docs_numbered(10, words=5)
    model = ScriptedChatModel([extract_all], cycle=True)
    LLMExtractor(model, max_tokens_per_batch=100_000, max_docs_per_batch=10).compress(docs, "q")
    assert len(model.calls) == 1
    model2 = ScriptedChatModel([extract_all], cycle=True)
    LLMExtractor(model2, max_tokens_per_batch=100_000, max_docs_per_batch=3).compress(docs, "q")
    assert len(model2.calls) == 4  # 3 + 3 + 3 + 1


def test_extractor_oversized_doc_goes_alone():
    docs = [Document("small"), Document("big " * 2000), Document("small too")]
    model = ScriptedChatModel([extract_all], cycle=True)
    extractor = LLMExtractor(model, max_tokens_per_batch=300)
    assert extractor.batches(docs, "q") == [[0], [1], [2]]


def test_extractor_garbled_reply_keeps_documents_or_drops_them_if_asked():
    docs = docs_numbered(3, words=3)
    keep = LLMExtractor(ScriptedChatModel(["I cannot help with that."]))
    assert keep.compress(docs, "q") == docs
    drop = LLMExtractor(ScriptedChatModel(["I cannot help with that."]), on_parse_error="drop")
    assert drop.compress(docs, "q") == []
    partial = LLMExtractor(ScriptedChatModel(["[2]\nNO_OUTPUT"]))  # says nothing of 1 and 3
    assert [d.id for d in partial.compress(docs, "q")] == ["d0", "d2"]


def test_extractor_runs_batches_concurrently_and_propagates_model_errors():
    seen_threads = set()

    def reply(messages):
        seen_threads.add(threading.get_ident())
        return extract_all(messages)

    docs = docs_numbered(6, words=5)
    model = ScriptedChatModel([reply], cycle=True, io_bound=True)
    out = LLMExtractor(model, max_docs_per_batch=1, max_concurrency=4).compress(docs, "q")
    assert len(model.calls) == 6 and len(out) == 6  # each alone: doc id 1, odd, kept
    failing = LLMExtractor(ScriptedChatModel([ConfigurationError("quota")]))
    with pytest.raises(ConfigurationError, match="quota"):
        failing.compress(docs[:1], "q")


def test_extractor_prompt_holds_query_and_numbered_docs():
    model = ScriptedChatModel(["[1]\nx\n[2]\ny"])
    LLMExtractor(model).compress([Document("alpha"), Document("beta")], "greek letters?")
    system, human = model.calls[0].messages
    assert "NO_OUTPUT" in system.text
    assert "greek letters?" in human.text and doc_ids_in(model.calls[0].messages) == [1, 2]


# ------------------------------------------------------------------ LLM filter
def test_filter_keeps_the_yeses_in_batches():
    def judge(messages):
        return "\n".join(f"{n}: {'yes' if n % 3 == 0 else 'no'}" for n in doc_ids_in(messages))

    docs = docs_numbered(9, words=5)
    model = ScriptedChatModel([judge], cycle=True)
    out = LLMFilter(model, max_docs_per_batch=3).compress(docs, "q")
    assert len(model.calls) == 3
    assert [d.id for d in out] == ["d2", "d5", "d8"]
    assert out[0] == docs[2]


def test_filter_missing_verdicts_degrade_gracefully():
    docs = docs_numbered(3, words=3)
    assert LLMFilter(ScriptedChatModel(["2: no"])).compress(docs, "q") == [docs[0], docs[2]]
    strict = LLMFilter(ScriptedChatModel(["2: yes"]), on_parse_error="drop")
    assert strict.compress(docs, "q") == [docs[1]]


def test_llm_compressor_argument_errors():
    with pytest.raises(ValueError, match="positive"):
        LLMFilter(ScriptedChatModel(), max_tokens_per_batch=0)
    with pytest.raises(ValueError, match="on_parse_error"):
        LLMExtractor(ScriptedChatModel(), on_parse_error="ignore")  # type: ignore[arg-type]
    assert LLMFilter(ScriptedChatModel()).compress([], "q") == []


# ------------------------------------------------------------------ embedding filters
def test_embeddings_filter_threshold_keeps_order_and_sets_scores():
    emb = WordEmbeddings()
    docs = [Document("cat dog"), Document("car road"), Document("cat"), Document("cat fish sun")]
    out = EmbeddingsFilter(emb, similarity_threshold=0.5).compress(docs, "cat")
    assert [d.text for d in out] == ["cat dog", "cat", "cat fish sun"]
    assert out[1].score == pytest.approx(1.0) and out[0].score == pytest.approx(1 / np.sqrt(2))


def test_embeddings_filter_k_sorts_and_batches_requests():
    emb = WordEmbeddings()
    docs = [Document(t) for t in ["car", "cat dog", "cat", "moon", "cat fish sun", "tea"]]
    out = EmbeddingsFilter(emb, k=2, batch_size=4).compress(docs, "cat")
    assert [d.text for d in out] == ["cat", "cat dog"]
    assert emb.batches[:2] == [4, 2]  # documents in batches of 4, then the query
    with pytest.raises(ValueError, match="similarity_threshold"):
        EmbeddingsFilter(emb)


def test_redundancy_filter_drops_near_duplicates_keeping_the_first():
    emb = WordEmbeddings()
    docs = [Document("cat dog", id="a"), Document("dog cat", id="b"), Document("car", id="c"),
            Document("cat dog fish", id="d")]
    assert [d.id for d in RedundancyFilter(emb).compress(docs, "q")] == ["a", "c", "d"]
    assert [d.id for d in RedundancyFilter(emb, 0.8).compress(docs, "q")] == ["a", "c"]


# ------------------------------------------------------------------ pipeline and retriever
class WordSplitter:
    def split_documents(self, docs):
        return [Document(w, dict(d.metadata)) for d in docs for w in d.text.split()]


def test_pipeline_runs_splitters_and_compressors_in_order():
    emb = WordEmbeddings()
    pipeline = CompressorPipeline([WordSplitter(), RedundancyFilter(emb), EmbeddingsFilter(emb, 0.9)])
    out = pipeline.compress([Document("cat dog cat"), Document("cat moon")], "cat")
    assert [d.text for d in out] == ["cat"]
    with pytest.raises(TypeError, match="split_documents"):
        CompressorPipeline([object()])


def test_contextual_compression_retriever():
    emb = WordEmbeddings()
    base = Fixed([Document("cat dog", id="1"), Document("car road", id="2"), Document("dog cat", id="3")])
    retriever = ContextualCompressionRetriever(base, [RedundancyFilter(emb), EmbeddingsFilter(emb, 0.5)])
    assert [d.id for d in retriever.invoke("cat")] == ["1"]
    judge = ScriptedChatModel(["1: no\n2: yes\n3: no"])
    assert [d.id for d in ContextualCompressionRetriever(base, LLMFilter(judge)).retrieve("roads")] == ["2"]
    assert ContextualCompressionRetriever(Fixed([]), LLMFilter(ScriptedChatModel())).retrieve("x") == []
    with pytest.raises(TypeError, match="compress"):
        ContextualCompressionRetriever(base, object())  # type: ignore[arg-type]
