"""MultiQueryRetriever: rewrites parsed from messy replies, retrieved concurrently, fused by RRF."""

from __future__ import annotations

import pytest

from maru.errors import ConfigurationError
from maru.models.scripted import ScriptedChatModel
from maru.rag import Document
from maru.rag.retrievers.base import Retriever
from maru.rag.retrievers.multi_query import MultiQueryRetriever, parse_queries


class Lookup(Retriever):
    """A ranking per query; records the queries it was asked."""

    def __init__(self, table):
        self.table, self.asked = table, []

    def retrieve(self, query):
        self.asked.append(query)
        return [Document(t, {}, i) for i, t in self.table.get(query, [])]


def test_parse_queries_strips_numbering_bullets_quotes_and_preambles():
    reply = (
        "Here are three alternative versions:\n\n"
        "1. How do I install Python?\n"
        "2) \"Python installation steps\"\n"
        "- **Setting up Python on Linux**\n"
        "* how do i install python?\n"  # a duplicate, ignoring case
        "Query 5: python setup guide\n"
        "   \n"
    )
    assert parse_queries(reply) == [
        "How do I install Python?",
        "Python installation steps",
        "Setting up Python on Linux",
        "python setup guide",
    ]
    assert parse_queries(reply, 2) == ["How do I install Python?", "Python installation steps"]
    assert parse_queries("") == []


def test_rewrites_are_retrieved_and_fused_with_dedup():
    base = Lookup({
        "q": [("a", "A"), ("b", "B")],
        "rewrite one": [("b", "B"), ("c", "C")],
        "rewrite two": [("b", "B"), ("d", "D")],
    })
    model = ScriptedChatModel(["1. rewrite one\n2. rewrite two"])
    docs = MultiQueryRetriever(base, model, n=2).retrieve("q")
    assert [d.id for d in docs] == ["b", "a", "c", "d"]  # b is in all three rankings
    assert docs[0].score == pytest.approx(1 / 62 + 2 / 61)
    assert sorted(base.asked) == ["q", "rewrite one", "rewrite two"]
    assert "2" in model.calls[0].messages[0].text and "q" in model.calls[0].messages[0].text


def test_without_the_original_query_and_with_k():
    base = Lookup({"q": [("a", "A")], "r1": [("c", "C"), ("d", "D")]})
    retriever = MultiQueryRetriever(base, ScriptedChatModel(["r1\nr2\nr3\nr4"]), n=3,
                                    include_original=False, k=1)
    assert [d.id for d in retriever.retrieve("q")] == ["c"]
    assert sorted(base.asked) == ["r1", "r2", "r3"]  # at most n rewrites, the original not asked


def test_documents_without_ids_deduplicate_by_text():
    class NoIds(Retriever):
        def retrieve(self, query):
            return [Document("same text"), Document(f"only for {query}")]

    docs = MultiQueryRetriever(NoIds(), ScriptedChatModel(["other"])).retrieve("q")
    assert [d.text for d in docs] == ["same text", "only for q", "only for other"]


def test_unusable_reply_falls_back_to_the_original_query():
    base = Lookup({"q": [("a", "A")]})
    retriever = MultiQueryRetriever(base, ScriptedChatModel(["Here you go:\n\n"]), include_original=False)
    assert [d.id for d in retriever.retrieve("q")] == ["a"]
    assert base.asked == ["q"]


def test_a_rewrite_equal_to_the_query_is_asked_once():
    base = Lookup({"q": [("a", "A")]})
    MultiQueryRetriever(base, ScriptedChatModel(["q\nq2"])).retrieve("q")
    assert sorted(base.asked) == ["q", "q2"]


def test_errors():
    base = Lookup({})
    with pytest.raises(ValueError, match="positive"):
        MultiQueryRetriever(base, ScriptedChatModel(), n=0)
    with pytest.raises(ValueError, match="{query}"):
        MultiQueryRetriever(base, ScriptedChatModel(), prompt="no placeholder")
    with pytest.raises(ConfigurationError):
        MultiQueryRetriever(base, ScriptedChatModel([ConfigurationError("down")])).retrieve("q")
