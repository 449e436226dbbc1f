"""Chat history stores keyed by session id: in memory, any SQLAlchemy URL (SQLite by default), Redis.

Every store appends atomically — two requests of one session writing at once both land, in order of
arrival — and reads back exactly the messages written (tool calls, usage and metadata included),
because messages are stored as their ``to_dict`` JSON.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _sqlite
from ..errors import ConfigurationError
from ..messages import BaseMessage, message_from_dict

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Engine

__all__ = ["ChatHistoryStore", "InMemoryHistory", "RedisHistory", "SQLHistory", "history_store"]


class ChatHistoryStore(ABC):
    """Messages per session, oldest first."""

    @abstractmethod
    def get(self, session_id: str) -> list[BaseMessage]:
        """Every message of the session, oldest first (empty for an unknown session)."""

    @abstractmethod
    def append(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        """Add messages at the end, atomically."""

    @abstractmethod
    def clear(self, session_id: str) -> None:
        """Forget the session."""

    @abstractmethod
    def sessions(self) -> list[str]:
        """The ids of sessions with at least one message."""

    def replace(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        """Set the session to exactly ``messages`` (after summarising older turns)."""
        self.clear(session_id)
        self.append(session_id, messages)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _check_session(session_id: Any) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
    return session_id


def _dump(message: BaseMessage) -> str:
    return json.dumps(message.to_dict(), ensure_ascii=False, default=str)


def _dump_all(messages: Sequence[BaseMessage]) -> str:
    return json.dumps([m.to_dict() for m in messages], ensure_ascii=False, default=str)


def _load(text: str | bytes) -> BaseMessage:
    return message_from_dict(json.loads(text))


class InMemoryHistory(ChatHistoryStore):
    """Sessions in a dict, guarded by a lock. Lost when the process ends."""

    def __init__(self) -> None:
        self._data: dict[str, list[BaseMessage]] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> list[BaseMessage]:
        with self._lock:
            return list(self._data.get(_check_session(session_id), ()))

    def append(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        with self._lock:
            self._data.setdefault(_check_session(session_id), []).extend(messages)

    def clear(self, session_id: str) -> None:
        with self._lock:
            self._data.pop(session_id, None)

    def sessions(self) -> list[str]:
        with self._lock:
            return [s for s, msgs in self._data.items() if msgs]


class SQLHistory(ChatHistoryStore):
    """A table at any SQLAlchemy URL; SQLite (WAL, busy timeout) by default. One row per *append*
    (a JSON list of messages), ordered by the autoincrement id: concurrent appends from threads or
    processes interleave whole batches — a question and its answer stay together even where a
    sequence hands out ids to concurrent transactions row by row (PostgreSQL) — and none is lost."""

    def __init__(self, url: str = "sqlite:///maru-history.db", *, table: str = "maru_chat_history") -> None:
        self.url = url
        self._table_name = table
        self._engine: Engine | None = None
        self._table: Table | None = None
        self._init_lock = threading.Lock()

    def _ready(self) -> tuple[Engine, Table]:
        if self._engine is None or self._table is None:
            with self._init_lock:
                if self._engine is None:
                    self._engine, self._table = _open_sql(self.url, self._table_name)
        assert self._engine is not None and self._table is not None
        return self._engine, self._table

    def get(self, session_id: str) -> list[BaseMessage]:
        from sqlalchemy import select

        engine, table = self._ready()
        query = select(table.c.messages).where(table.c.session_id == _check_session(session_id)).order_by(table.c.id)
        with engine.connect() as conn:
            return [message_from_dict(m) for row in conn.execute(query) for m in json.loads(row[0])]

    def append(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        engine, table = self._ready()
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"session_id": _check_session(session_id), "messages": _dump_all(messages)}])

    def clear(self, session_id: str) -> None:
        engine, table = self._ready()
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.session_id == session_id))

    def replace(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        engine, table = self._ready()
        row = {"session_id": _check_session(session_id), "messages": _dump_all(messages)}
        with engine.begin() as conn:  # one transaction: readers never see the session empty
            conn.execute(table.delete().where(table.c.session_id == session_id))
            if messages:
                conn.execute(table.insert(), [row])

    def sessions(self) -> list[str]:
        from sqlalchemy import select

        engine, table = self._ready()
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(select(table.c.session_id).distinct().order_by(table.c.session_id))]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _open_sql(url: str, name: str) -> tuple[Engine, Table]:
    from sqlalchemy import (
        Column,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        create_engine,
        event,
    )
    from sqlalchemy.engine import make_url

    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    file = _sqlite.file_of_url(url) if is_sqlite else None
    if file is not None:
        _sqlite.make_parent_folder(file, ConfigurationError, "the chat history")
    engine = create_engine(url, connect_args={"timeout": 30} if is_sqlite else {})
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    metadata = MetaData()
    table = Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("session_id", String(255), nullable=False),
        Column("messages", Text, nullable=False),
        Index(f"ix_{name}_session", "session_id", "id"),
    )
    metadata.create_all(engine)
    return engine, table


class RedisHistory(ChatHistoryStore):
    """A Redis list per session (``RPUSH`` is atomic); ``ttl_s`` expires idle sessions."""

    def __init__(self, url: str = "redis://localhost:6379/0", *, prefix: str = "maru:history:",
                 ttl_s: int | None = None, client: Any = None) -> None:
        self.prefix, self.ttl_s = prefix, ttl_s
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise ConfigurationError("RedisHistory needs the redis package: pip install 'maru[cache]'") from exc
            client = redis.Redis.from_url(url)
        self._redis = client

    def _key(self, session_id: str) -> str:
        return self.prefix + _check_session(session_id)

    def get(self, session_id: str) -> list[BaseMessage]:
        return [_load(item) for item in self._redis.lrange(self._key(session_id), 0, -1)]

    def append(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        key = self._key(session_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, *[_dump(m) for m in messages])
        if self.ttl_s:
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def clear(self, session_id: str) -> None:
        self._redis.delete(self._key(session_id))

    def replace(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        key = self._key(session_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        if messages:
            pipe.rpush(key, *[_dump(m) for m in messages])
        pipe.execute()

    def sessions(self) -> list[str]:
        n = len(self.prefix)
        return sorted(k.decode()[n:] if isinstance(k, bytes) else k[n:] for k in self._redis.scan_iter(self.prefix + "*"))

    def close(self) -> None:
        self._redis.close()


def history_store(spec: str | ChatHistoryStore | None) -> ChatHistoryStore:
    """A store from a spec: ``None``/"memory", a SQLAlchemy URL, ``redis://…``, or a path to a SQLite file."""
    if isinstance(spec, ChatHistoryStore):
        return spec
    if spec is None or spec == "memory":
        return InMemoryHistory()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisHistory(spec)
    if "://" in spec:
        return SQLHistory(spec)
    return SQLHistory(f"sqlite:///{spec}")


def messages_of(items: Iterable[Any]) -> list[BaseMessage]:
    from ..messages import to_messages

    return to_messages(list(items))
