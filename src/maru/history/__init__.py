"""Chat history: stores keyed by session id, token trimming, ``with_history``, follow-up rewriting."""

from .followup import HistoryAwareRetriever, StandaloneQuestion, history_aware_retriever
from .runnable import RunnableWithHistory, with_history
from .stores import ChatHistoryStore, InMemoryHistory, RedisHistory, SQLHistory, history_store
from .trim import trim_messages

__all__ = [
    "ChatHistoryStore",
    "HistoryAwareRetriever",
    "InMemoryHistory",
    "RedisHistory",
    "RunnableWithHistory",
    "SQLHistory",
    "StandaloneQuestion",
    "history_aware_retriever",
    "history_store",
    "trim_messages",
    "with_history",
]
