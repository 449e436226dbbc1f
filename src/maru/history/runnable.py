"""``with_history``: give any runnable a memory keyed by the session id in the call's config.

    chat = with_history(prompt | model, SQLHistory("sqlite:///chat.db"), input_key="question")
    chat.invoke({"question": "Hi"}, {"configurable": {"session_id": "u42"}})

Before the call the session's messages are loaded (trimmed to ``max_tokens`` if set) and handed to
the runnable — under ``history_key`` for dict inputs, or in front of the messages otherwise; after
it the new human message and the answer are appended in one atomic write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.chunks import add_chunks
from ..core.config import RunConfig
from ..core.runnable import Runnable, coerce
from ..messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, to_messages
from .sessions import HistorySource, session_stores
from .stores import ChatHistoryStore
from .trim import trim_messages

__all__ = ["RunnableWithHistory", "with_history"]

_Session = tuple[ChatHistoryStore, str]
"""The store that holds a session, and the session's id."""


class RunnableWithHistory(Runnable[Any, Any]):
    kind = "chain"
    io_bound = True

    def __init__(
        self,
        runnable: Any,
        store: HistorySource,
        *,
        input_key: str | None = None,
        history_key: str = "history",
        output_key: str | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
        summarize: Runnable[Any, Any] | None = None,
        summarize_after: int = 40,
    ) -> None:
        self.inner = coerce(runnable)
        self._stores = session_stores(store)
        self.store: ChatHistoryStore | None = None if callable(store) else self._stores("")
        """The store, when one holds every session (``None`` when a function picks it per session)."""
        self.input_key, self.history_key, self.output_key = input_key, history_key, output_key
        self.max_tokens, self.model = max_tokens, model
        self.summarize, self.summarize_after = summarize, summarize_after
        self._name = f"WithHistory[{self.inner.name}]"

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def session_of(config: RunConfig | None) -> str:
        session = ((config or {}).get("configurable") or {}).get("session_id")
        if not session:
            raise ValueError(
                "this runnable keeps chat history: pass a session id, e.g. "
                "invoke(x, {'configurable': {'session_id': 'user-42'}})"
            )
        return str(session)

    def _prepare(self, input: Any, config: RunConfig | None) -> tuple[_Session, Any, list[BaseMessage]]:
        session_id = self.session_of(config)
        store = self._stores(session_id)
        past = store.get(session_id)
        if self.max_tokens is not None:
            past = trim_messages(past, self.max_tokens, model=self.model)
        if isinstance(input, dict):
            new = self._new_messages(input[self.input_key] if self.input_key else input)
            call_input: Any = {**input, self.history_key: past}
        else:
            new = self._new_messages(input)
            call_input = [*past, *new]
        return (store, session_id), call_input, new

    @staticmethod
    def _new_messages(value: Any) -> list[BaseMessage]:
        if isinstance(value, str):
            return [HumanMessage(value)]
        if isinstance(value, dict):
            raise ValueError("a dict input needs input_key=... to say which field is the user's message")
        return [m for m in to_messages(value) if not isinstance(m, SystemMessage)]

    def _record(self, session: _Session, new: list[BaseMessage], output: Any) -> None:
        value = output[self.output_key] if self.output_key and isinstance(output, dict) else output
        answer = value if isinstance(value, AIMessage) else AIMessage(str(getattr(value, "content", value)))
        if isinstance(answer, AIMessage) and type(answer) is not AIMessage:  # a summed stream chunk
            answer = AIMessage(answer.content, tool_calls=list(answer.tool_calls), usage=answer.usage)
        store, session_id = session
        store.append(session_id, [*new, answer])
        if self.summarize is not None:
            self._maybe_summarize(store, session_id)

    def _maybe_summarize(self, store: ChatHistoryStore, session_id: str) -> None:
        assert self.summarize is not None
        messages = store.get(session_id)
        if len(messages) <= self.summarize_after:
            return
        keep = self.summarize_after // 2
        system = [m for m in messages[:1] if isinstance(m, SystemMessage)]
        older, recent = messages[len(system):-keep], messages[-keep:]
        summary = self.summarize.invoke(older)
        text = str(getattr(summary, "content", summary))
        store.replace(session_id, [*system, SystemMessage(f"Summary of the earlier conversation: {text}"), *recent])

    # ------------------------------------------------------------------ hooks
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        session, call_input, new = self._prepare(input, config)
        output = self.inner.invoke(call_input, config, **kwargs)
        self._record(session, new, output)
        return output

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        session, call_input, new = self._prepare(input, config)
        total: Any = None
        for chunk in self.inner.stream(call_input, config, **kwargs):
            total = chunk if total is None else add_chunks(total, chunk)
            yield chunk
        self._record(session, new, total)


def with_history(runnable: Any, store: HistorySource = None, **options: Any) -> RunnableWithHistory:
    """Wrap ``runnable`` so each call reads and extends the history of ``config.configurable.session_id``.
    ``store``: a :class:`ChatHistoryStore`, ``"memory"``, a SQLAlchemy or redis URL, a SQLite path
    (``str`` or ``pathlib.Path``), or a function from session id to a store or to that session's
    chat history (LangChain's ``get_session_history``)."""
    return RunnableWithHistory(runnable, store, **options)

