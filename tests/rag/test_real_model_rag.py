"""Multi-query retrieval and LLM compression with the bundled SmolLM2-135M in process: the model
writes the rewrites, extracts and verdicts; a bag-of-words embedding keeps the store deterministic.
Assertions are on structure and protocol, never on wording."""

from __future__ import annotations

import pytest

from maru.models.embeddings import Embeddings
from maru.rag import Document, InMemoryStore
from maru.rag.retrievers.compression import LLMExtractor, LLMFilter
from maru.rag.retrievers.multi_query import MultiQueryRetriever

pytestmark = pytest.mark.real_model

DOCS = [
    Document("Cats sleep most of the day.", {}, "cat"),
    Document("Dogs like to run in the park.", {}, "dog"),
    Document("Tea is made from dried leaves.", {}, "tea"),
]


class WordEmbeddings(Embeddings):
    """Bag of words over a small vocabulary, plus a constant axis so no vector is zero."""

    VOCAB = ["cat", "dog", "tea", "sleep", "run", "park", "leaves", "day"]

    def embed_documents(self, texts):
        return [[1.0] + [float(w in t.lower()) for w in self.VOCAB] for t in texts]


class Recording:
    """The model, with every reply it gave kept: proof that the real model was asked."""

    def __init__(self, model):
        self.model, self.replies = model, []

    def invoke(self, *args, **kwargs):
        reply = self.model.invoke(*args, **kwargs)
        self.replies.append(reply)
        return reply

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture(scope="module")
def model(local_model):
    return local_model(max_tokens=48, n_ctx=2048)


@pytest.fixture
def store():
    s = InMemoryStore(WordEmbeddings())
    s.add(DOCS)
    return s


def test_multi_query_rewrites_with_the_model_and_returns_documents(model, store):
    recording = Recording(model)
    retriever = MultiQueryRetriever(store.as_retriever(k=2), recording, n=2)
    queries = retriever.queries_for("Why do cats sleep?")
    assert queries[0] == "Why do cats sleep?"
    assert 1 <= len(queries) <= 3
    assert all(isinstance(q, str) and q.strip() for q in queries)
    docs = retriever.retrieve("Why do cats sleep?")
    assert len(recording.replies) == 2 and recording.replies[0].usage.output_tokens > 0
    assert docs and {d.id for d in docs} <= {d.id for d in DOCS}
    assert len({d.id for d in docs}) == len(docs)  # fused without duplicates


def test_llm_extractor_returns_extracts_of_the_input(model):
    recording = Recording(model)
    out = LLMExtractor(recording).compress(DOCS[:2], "What do cats do?")
    assert len(recording.replies) == 1  # both documents in one prompt
    assert len(out) <= 2
    assert all(d.id in {"cat", "dog"} and isinstance(d.text, str) for d in out)


def test_llm_filter_keeps_a_subset_unchanged(model):
    recording = Recording(model)
    out = LLMFilter(recording).compress(DOCS, "What do cats do?")
    assert len(recording.replies) == 1
    assert all(d in DOCS for d in out)
    assert [d.id for d in out] == [d.id for d in DOCS if d in out]  # input order kept
