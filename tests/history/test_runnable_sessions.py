"""``with_history`` takes what LangChain's ``RunnableWithMessageHistory`` users hand it: a store, a
URL, a ``pathlib.Path``, or a function from session id to a store or to one session's history."""

from __future__ import annotations

from pathlib import Path

import pytest

from maru.history import InMemoryHistory, SQLHistory, with_history
from maru.messages import AIMessage, HumanMessage, ToolCall
from maru.models.scripted import ScriptedChatModel

CONFIG = {"configurable": {"session_id": "u1"}}


def _two_turns(chat, model):
    chat.invoke("My name is Mina.", CONFIG)
    chat.invoke("What is my name?", CONFIG)
    return [m.content for m in model.calls[1].messages]


def test_a_pathlib_path_is_a_sqlite_file(tmp_path: Path):
    model = ScriptedChatModel(["Hello Mina.", "Mina."])
    chat = with_history(model, tmp_path / "chat.db")
    assert _two_turns(chat, model) == ["My name is Mina.", "Hello Mina.", "What is my name?"]
    stored = SQLHistory(f"sqlite:///{tmp_path / 'chat.db'}").get("u1")
    assert [m.content for m in stored] == ["My name is Mina.", "Hello Mina.", "What is my name?", "Mina."]


def test_a_session_callable_returning_a_store():
    store = InMemoryHistory()
    asked = []

    def get_session_history(session_id):
        asked.append(session_id)
        return store

    model = ScriptedChatModel(["Hello Mina.", "Mina."])
    chat = with_history(model, get_session_history)
    assert _two_turns(chat, model) == ["My name is Mina.", "Hello Mina.", "What is my name?"]
    assert asked == ["u1", "u1"]
    assert [m.content for m in store.get("u1")][-1] == "Mina."


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # LangChain deprecates its in-memory history
def test_a_session_callable_returning_one_sessions_langchain_history():
    history = pytest.importorskip("langchain_core.chat_history")
    lc_messages = pytest.importorskip("langchain_core.messages")
    sessions: dict[str, object] = {}

    def get_session_history(session_id):
        return sessions.setdefault(session_id, history.InMemoryChatMessageHistory())

    model = ScriptedChatModel(
        [AIMessage("", tool_calls=[ToolCall("lookup", {"q": "x"}, "c1")]), "Mina."]
    )
    chat = with_history(model, get_session_history)
    assert _two_turns(chat, model) == ["My name is Mina.", "", "What is my name?"]
    stored = sessions["u1"].messages
    assert all(isinstance(m, lc_messages.BaseMessage) for m in stored)  # LangChain's own messages
    assert [m.type for m in stored] == ["human", "ai", "human", "ai"]
    assert stored[1].tool_calls[0]["name"] == "lookup" and stored[3].content == "Mina."
    assert type(model.calls[1].messages[0]) is HumanMessage  # the model sees maru messages


def test_a_session_callable_returning_something_else_says_what_to_return():
    chat = with_history(ScriptedChatModel(["x"]), lambda session_id: "not a history")
    with pytest.raises(TypeError, match="ChatHistoryStore"):
        chat.invoke("hi", CONFIG)


def test_an_unusable_store_argument_says_what_is_accepted():
    with pytest.raises(TypeError, match="session id"):
        with_history(ScriptedChatModel(["x"]), 42)
