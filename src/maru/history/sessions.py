"""Where ``with_history`` finds a session's messages.

Users arriving from LangChain's ``RunnableWithMessageHistory`` hand over a function from session id
to that session's history (``lambda session_id: store[session_id]``); others give a store, a URL or
a file path. Each becomes one thing: a function from session id to a :class:`ChatHistoryStore`.
A LangChain chat history (one session's messages, with ``messages`` and ``add_messages``) is read
and written through :class:`ForeignSessionHistory`, in LangChain's own message types, so the
history object stays usable by LangChain code too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..core.foreign import langchain_messages
from ..messages import BaseMessage, to_message
from .stores import ChatHistoryStore, history_store

__all__ = ["ForeignSessionHistory", "HistorySource", "session_stores"]

HistorySource = ChatHistoryStore | str | os.PathLike[str] | Callable[[str], Any] | None
"""A store, ``"memory"``/``None``, a URL, a SQLite file path, or ``session_id -> store or history``."""

SessionStores = Callable[[str], ChatHistoryStore]


def session_stores(source: HistorySource) -> SessionStores:
    """A function giving the store that holds a session, from what the user passed."""
    if isinstance(source, ChatHistoryStore | str | os.PathLike) or source is None:
        store = history_store(os.fspath(source) if isinstance(source, os.PathLike) else source)
        return lambda session_id: store
    if callable(source):
        return lambda session_id: _as_store(source(session_id), source)
    raise TypeError(
        f"with_history cannot keep history in {type(source).__name__} {source!r:.80}; pass a "
        "ChatHistoryStore, 'memory', a database URL, a SQLite file path, or a function from a "
        "session id to a store or to that session's chat history"
    )


def _as_store(found: Any, source: Callable[[str], Any]) -> ChatHistoryStore:
    if isinstance(found, ChatHistoryStore):
        return found
    if hasattr(found, "messages") and callable(getattr(found, "add_messages", None)):
        return ForeignSessionHistory(found)
    name = getattr(source, "__name__", "the session function")
    raise TypeError(
        f"{name} returned {type(found).__name__} {found!r:.80}; return a ChatHistoryStore or one "
        "session's chat history (an object with .messages and .add_messages(), as LangChain's are)"
    )


class ForeignSessionHistory(ChatHistoryStore):
    """One session's history from another library, as a store: the session id was already used to
    find it, so every id reads and writes the same messages."""

    def __init__(self, history: Any) -> None:
        self.history = history
        self._langchain = type(history).__module__.startswith("langchain")

    def get(self, session_id: str) -> list[BaseMessage]:
        return [to_message(m) for m in self.history.messages]

    def append(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        if messages:
            self.history.add_messages(langchain_messages(messages) if self._langchain else list(messages))

    def clear(self, session_id: str) -> None:
        self.history.clear()

    def sessions(self) -> list[str]:
        return []  # one session, whose id the history does not know
