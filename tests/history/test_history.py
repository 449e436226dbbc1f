"""Chat history: stores (memory, SQLite, Redis), concurrent appends, trimming, with_history,
summaries and follow-up rewriting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from maru.history import (
    InMemoryHistory,
    RedisHistory,
    SQLHistory,
    history_aware_retriever,
    trim_messages,
    with_history,
)
from maru.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from maru.models.scripted import ScriptedChatModel
from maru.prompts import ChatPromptTemplate, MessagesPlaceholder
from maru.rag import Document
from maru.rag.retrievers.base import Retriever


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        yield InMemoryHistory()
    elif request.param == "sqlite":
        s = SQLHistory(f"sqlite:///{tmp_path / 'h.db'}")
        yield s
        s.close()
    else:
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        s = RedisHistory(url, prefix=f"t{id(request)}:")
        yield s
        s.close()


def test_round_trip_keeps_every_field(store):
    call = ToolCall(name="weather", args={"city": "Seoul"}, id="c1")
    messages = [
        SystemMessage("be brief"),
        HumanMessage("서울 날씨는?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("맑음", tool_call_id="c1"),
        AIMessage("맑아요."),
    ]
    store.append("s1", messages)
    back = store.get("s1")
    assert back == messages
    assert back[2].tool_calls[0].args == {"city": "Seoul"}
    assert store.get("unknown") == []
    assert store.sessions() == ["s1"]
    store.replace("s1", [HumanMessage("only")])
    assert [m.content for m in store.get("s1")] == ["only"]
    store.clear("s1")
    assert store.get("s1") == [] and store.sessions() == []


def test_concurrent_appends_lose_nothing(store):
    def writer(n):
        for i in range(25):
            store.append("s", [HumanMessage(f"{n}-{i}"), AIMessage(f"a{n}-{i}")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get("s")
    assert len(got) == 200
    for k in range(0, 200, 2):  # each pair stays together: appends are atomic
        assert got[k].content[:] == got[k + 1].content[1:]
    for n in range(4):  # and each writer's order is kept
        mine = [int(m.content.split("-")[1]) for m in got if isinstance(m, HumanMessage) and m.content.startswith(f"{n}-")]
        assert mine == list(range(25))


def test_sqlite_appends_from_several_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    SQLHistory(url).append("warm", [HumanMessage("x")])  # create the table first
    script = textwrap.dedent(
        """
        import sys
        from maru.history import SQLHistory
        from maru.messages import HumanMessage
        store = SQLHistory(sys.argv[1])
        for i in range(40):
            store.append("s", [HumanMessage(f"{sys.argv[2]}-{i}")])
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(n)]) for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert len(SQLHistory(url).get("s")) == 120


def test_session_id_must_be_a_string():
    with pytest.raises(ValueError, match="session_id"):
        InMemoryHistory().append("", [HumanMessage("x")])


def test_trim_keeps_system_and_recent_whole_turns():
    long = "word " * 200
    messages = [SystemMessage("You are a guide.")]
    for i in range(10):
        messages += [HumanMessage(f"q{i} {long}"), AIMessage(f"a{i} {long}")]
    trimmed = trim_messages(messages, 700)
    assert trimmed[0].content == "You are a guide."
    assert trimmed[-1].content.startswith("a9")
    assert 1 < len(trimmed) < len(messages)
    from maru.usage.tokens import count_tokens

    assert sum(count_tokens(m) for m in trimmed) <= 700


def test_trim_never_keeps_a_tool_result_without_its_call():
    call = AIMessage("", tool_calls=[ToolCall(name="t", args={}, id="c1")])
    messages = [HumanMessage("x " * 300), call, ToolMessage("r " * 300, tool_call_id="c1"), AIMessage("done")]
    from maru.usage.tokens import count_tokens

    budget = count_tokens(messages[2]) + count_tokens(messages[3]) + 5
    trimmed = trim_messages(messages, budget)
    assert trimmed == [AIMessage("done")]


def _echo_prompt():
    return ChatPromptTemplate.from_messages(
        [("system", "You are a travel guide."), MessagesPlaceholder("history"), ("human", "{question}")]
    )


def test_with_history_feeds_and_records_the_conversation(tmp_path):
    model = ScriptedChatModel(["Gyeongbokgung and Bukchon.", "Try Tosokchon near Gyeongbokgung."])
    chat = with_history(_echo_prompt() | model, f"sqlite:///{tmp_path / 'chat.db'}", input_key="question")
    config = {"configurable": {"session_id": "u1"}}
    chat.invoke({"question": "서울에서 유명한 여행지는?"}, config)
    answer = chat.invoke({"question": "그 근처에 맛있는 식당은?"}, config)
    assert answer.content.startswith("Try Tosokchon")
    second_call = model.calls[1].messages
    assert [m.content for m in second_call[1:3]] == ["서울에서 유명한 여행지는?", "Gyeongbokgung and Bukchon."]
    stored = SQLHistory(f"sqlite:///{tmp_path / 'chat.db'}").get("u1")
    assert [type(m).__name__ for m in stored] == ["HumanMessage", "AIMessage"] * 2
    with pytest.raises(ValueError, match="session_id"):
        chat.invoke({"question": "hi"})


def test_with_history_streams_and_records_the_whole_answer():
    model = ScriptedChatModel(["one two three"])
    store = InMemoryHistory()
    chat = with_history(model, store)
    pieces = list(chat.stream("count", {"configurable": {"session_id": "s"}}))
    assert len(pieces) > 1
    assert [m.content for m in store.get("s")] == ["count", "one two three"]
    assert type(store.get("s")[1]) is AIMessage


def test_with_history_summarizes_older_turns():
    model = ScriptedChatModel([f"a{i}" for i in range(6)])
    summarizer = ScriptedChatModel(["they talked about Seoul"])
    store = InMemoryHistory()
    chat = with_history(model, store, summarize=summarizer, summarize_after=6)
    for i in range(4):
        chat.invoke(f"q{i}", {"configurable": {"session_id": "s"}})
    kept = store.get("s")
    assert kept[0].content == "Summary of the earlier conversation: they talked about Seoul"
    assert [m.content for m in kept[1:]] == ["a2", "q3", "a3"]
    assert len(summarizer.calls) == 1


class KeywordRetriever(Retriever):
    def __init__(self, docs):
        self.docs = docs
        self.queries: list[str] = []

    def retrieve(self, query):
        self.queries.append(query)
        return [d for d in self.docs if any(w in d.text for w in query.split())]


def test_follow_up_is_rewritten_before_retrieval():
    docs = [Document("서울 경복궁 근처 식당: 토속촌"), Document("부산 해운대 맛집")]
    retriever = KeywordRetriever(docs)
    model = ScriptedChatModel(["서울 경복궁 근처에 맛있는 식당은?"])
    history = [HumanMessage("서울에서 유명한 여행지는?"), AIMessage("경복궁이 유명해요.")]
    found = history_aware_retriever(model, retriever).invoke({"question": "그 근처에 맛있는 식당은?", "history": history})
    assert retriever.queries == ["서울 경복궁 근처에 맛있는 식당은?"]
    assert [d.text for d in found] == ["서울 경복궁 근처 식당: 토속촌"]
    rewrite_prompt = model.calls[0].messages
    assert rewrite_prompt[-1].content == "그 근처에 맛있는 식당은?"
    assert rewrite_prompt[1].content == "서울에서 유명한 여행지는?"


def test_first_question_is_not_rewritten():
    retriever = KeywordRetriever([Document("부산 해운대")])
    model = ScriptedChatModel([])
    history_aware_retriever(model, retriever).invoke({"question": "부산 해운대", "history": []})
    assert retriever.queries == ["부산 해운대"] and model.calls == []
