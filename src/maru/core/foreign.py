"""A LangChain runnable as one maru step, so ``maru_step | langchain_runnable`` composes.

It is recognised by its module and shape — LangChain is never imported to find out — and run
through its own ``invoke`` / ``ainvoke`` / ``stream`` / ``astream`` with the caller's config (maru's
keys are LangChain's). In events and traces it is one run: what LangChain does inside is LangChain's.

Going in, maru messages (alone, in a list, in a prompt value, or as values of a dict input) become
LangChain's, built by langchain-core itself (it is installed: the runnable came from it). Coming
out, values pass on unchanged: maru's chat models and parsers read LangChain messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .config import RunConfig
from .runnable import Runnable

_METHODS = ("invoke", "ainvoke", "stream", "astream")


def is_langchain_runnable(thing: Any) -> bool:
    return type(thing).__module__.startswith("langchain") and all(
        callable(getattr(thing, m, None)) for m in _METHODS
    )


class LangChainStep(Runnable[Any, Any]):
    """One LangChain runnable, called through its own API."""

    io_bound = True  # unknown, so assume it may wait on the outside world

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        get_name = getattr(inner, "get_name", None)
        self._name = get_name() if callable(get_name) else type(inner).__name__

    def __repr__(self) -> str:
        return f"LangChainStep({self._name})"

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self.inner.invoke(for_langchain(input), config, **kwargs)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return await self.inner.ainvoke(for_langchain(input), config, **kwargs)

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        return iter(self.inner.stream(for_langchain(input), config, **kwargs))

    def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        return aiter(self.inner.astream(for_langchain(input), config, **kwargs))


def for_langchain(value: Any) -> Any:
    """``value`` with maru messages turned into LangChain's; anything else as it is."""
    if _is_maru_message(value):
        return langchain_messages([value])[0]
    if isinstance(value, list | tuple) and value and all(_is_maru_message(v) for v in value):
        return langchain_messages(value)
    if type(value).__module__.startswith("maru.") and callable(getattr(value, "to_messages", None)):
        return langchain_messages(value.to_messages())  # a maru prompt value
    if isinstance(value, dict) and any(_is_maru_message(v) or isinstance(v, list) for v in value.values()):
        return {k: for_langchain(v) for k, v in value.items()}
    return value


def _is_maru_message(value: Any) -> bool:
    return type(value).__module__ == "maru.messages" and hasattr(value, "role")


def langchain_messages(messages: Any) -> list[Any]:
    """LangChain's messages for maru ones, built by langchain-core (only called with LangChain present)."""
    from langchain_core.messages import convert_to_messages

    return list(convert_to_messages([_wire_dict(m) for m in messages]))


def _wire_dict(message: Any) -> dict[str, Any]:
    data = message.to_dict()
    return {k: data[k] for k in ("role", "content", "name", "id", "tool_calls", "tool_call_id") if k in data}
