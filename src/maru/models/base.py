"""``ChatModel``: the one interface every chat provider implements.

A provider implements what it natively is — ``_generate`` (sync), ``_agenerate`` (async),
``_stream_chunks`` / ``_astream_chunks`` (streaming) — and the base derives the rest and the Runnable
hooks (``invoke``, ``stream``, ``batch`` … all come from :class:`maru.core.Runnable`).

Every request any chat model makes passes through exactly one of four methods::

    _call(messages, params)          -> AIMessage                  (invoke, batch)
    _acall(messages, params)         -> AIMessage                  (ainvoke, abatch)
    _call_stream(messages, params)   -> Iterator[AIMessageChunk]   (stream)
    _acall_stream(messages, params)  -> AsyncIterator[AIMessageChunk]

and ``params`` always comes from :meth:`ChatModel.invocation_params`. That is the choke point for
cross-cutting behaviour (response caching, token and money budgets, usage tracking): wrap or
override these four, never the provider hooks, and every call path is covered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from ..cache import base as _cache_base
from ..core.config import RunConfig
from ..core.executor import run_coroutine_sync, run_in_thread
from ..core.runnable import Runnable
from ..messages import AIMessage, AIMessageChunk, BaseMessage, to_messages
from ..usage.scope import active_scope
from . import accounting
from .chunks import gather_message, message_to_chunk
from .tools_schema import normalize_tool_choice, to_openai_tool, to_openai_tools

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..cache.base import BaseCache

__all__ = ["ChatModel", "message_to_chunk"]

_PROVIDER_HOOKS = ("_generate", "_agenerate", "_stream_chunks", "_astream_chunks")


class ChatModel(Runnable[Any, AIMessage]):
    """A chat model: messages in, an :class:`~maru.messages.AIMessage` (with ``usage``) out.

    Input is anything :func:`maru.messages.to_messages` accepts: a string, messages, ``(role, text)``
    tuples, dicts, or a prompt value. Call-time keyword arguments (``model.invoke(x, temperature=0)``,
    ``model.bind(stop=["\\n"])``) override the defaults given at construction.

    Streaming yields :class:`~maru.messages.AIMessageChunk` s; their sum, ``.to_message()``, equals
    what ``invoke`` returns, and the last chunk carries the usage.
    """

    kind: ClassVar[str] = "chat_model"
    io_bound: bool = True
    _overrides: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cache: BaseCache | bool | None = None, **defaults: Any) -> None:
        self.cache: BaseCache | bool | None = cache
        """``None``: use the global cache if one is set; a cache: use it; ``False``: never cache."""
        self.defaults: dict[str, Any] = _normalize(defaults)
        """Default request parameters (``model``, ``temperature`` …); ``None`` values are dropped."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._overrides = frozenset(
            hook for hook in _PROVIDER_HOOKS if getattr(cls, hook) is not getattr(ChatModel, hook)
        )

    @property
    def model_name(self) -> str:
        return str(self.defaults.get("model", ""))

    @property
    def provider(self) -> str | None:
        """Who serves the model, as OpenTelemetry's ``gen_ai.provider.name`` spells it (``openai``,
        ``gcp.gemini`` …); ``None`` when unknown. Traces and exported spans carry it."""
        return None

    @property
    def local(self) -> bool:
        """Whether the model runs on this machine (in process, or a server on a loopback address).
        A local model with no known price costs 0 rather than "unknown" (see
        :func:`maru.usage.prices.cost_for`); a known price, say of a local proxy, still applies."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r})"

    # ----------------------------------------------------------------- parameters
    def invocation_params(self, **kwargs: Any) -> dict[str, Any]:
        """The request parameters of one call: the defaults overridden by ``kwargs``, normalised
        (``stop`` a list, tools as OpenAI schemas, a pydantic ``response_format`` as a JSON-schema
        format). ``None`` means "not sent": a call-time ``temperature=None`` unsets a default, for
        models that reject the parameter. Always a fresh dict, so later layers may keep or key on it."""
        if not kwargs:
            return dict(self.defaults)
        return _normalize({**self.defaults, **kwargs})

    # ----------------------------------------------------------------- caching
    def active_cache(self) -> BaseCache | None:
        """This model's cache: its own (``cache=``), else the global one (``maru.cache.set_cache``);
        ``cache=False`` opts out of caching altogether."""
        cache = self.cache
        if cache is None:
            return _cache_base._global_cache
        if cache is False:  # ``is False``, not falsiness: an empty cache is falsy
            return None
        return cast("BaseCache", cache)

    # ----------------------------------------------------------------- the four choke points
    def _call(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        """Every sync, whole-message request goes through here (see the module docstring)."""
        scope = active_scope()
        cache = self.active_cache()
        if scope is None and cache is None:
            return self._generate(messages, params)
        return accounting.call(self, messages, params, cache, scope)

    async def _acall(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        """Every async, whole-message request goes through here."""
        scope = active_scope()
        cache = self.active_cache()
        if scope is None and cache is None:
            return await self._agenerate(messages, params)
        return await accounting.acall(self, messages, params, cache, scope)

    def _call_stream(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        """Every sync streaming request goes through here."""
        scope = active_scope()
        cache = self.active_cache()
        if scope is None and cache is None:
            return self._stream_chunks(messages, params)
        return accounting.call_stream(self, messages, params, cache, scope)

    def _acall_stream(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        """Every async streaming request goes through here."""
        scope = active_scope()
        cache = self.active_cache()
        if scope is None and cache is None:
            return self._astream_chunks(messages, params)
        return accounting.acall_stream(self, messages, params, cache, scope)

    # ----------------------------------------------------------------- Runnable hooks
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AIMessage:
        return self._call(to_messages(input), self.invocation_params(**kwargs))

    async def _ainvoke(
        self, input: Any, config: RunConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        return await self._acall(to_messages(input), self.invocation_params(**kwargs))

    def _stream(
        self, input: Any, config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        return self._call_stream(to_messages(input), self.invocation_params(**kwargs))

    def _astream(
        self, input: Any, config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        return self._acall_stream(to_messages(input), self.invocation_params(**kwargs))

    # ----------------------------------------------------------------- provider hooks (defaults)
    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        """One request, one whole message. Default: derived from whichever hook the provider has."""
        overrides = self._overrides
        if "_stream_chunks" in overrides:
            return gather_message(self._stream_chunks(messages, params))
        if "_agenerate" in overrides or "_astream_chunks" in overrides:
            return run_coroutine_sync(self._agenerate(messages, params))
        raise self._not_implemented()

    async def _agenerate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        """Async twin of ``_generate``. Default: the sync path on the shared executor."""
        overrides = self._overrides
        if "_generate" in overrides or "_stream_chunks" in overrides:
            return await run_in_thread(self._generate, messages, params)
        if "_astream_chunks" in overrides:
            return gather_message([chunk async for chunk in self._astream_chunks(messages, params)])
        raise self._not_implemented()

    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        """Stream one request. Default: the whole message as a single chunk."""
        yield message_to_chunk(self._generate(messages, params))

    async def _astream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of ``_stream_chunks``. Default: a sync stream pulled on the shared executor, or
        the async whole message as one chunk."""
        if "_stream_chunks" in self._overrides:
            iterator = self._stream_chunks(messages, params)
            end = object()
            while (chunk := await run_in_thread(next, iterator, end)) is not end:
                yield chunk  # type: ignore[misc]
            return
        yield message_to_chunk(await self._agenerate(messages, params))

    def _not_implemented(self) -> TypeError:
        return TypeError(
            f"{type(self).__name__} implements none of _generate, _agenerate, _stream_chunks, "
            "_astream_chunks; a ChatModel must implement at least one"
        )

    # ----------------------------------------------------------------- tools and structured output
    def bind_tools(
        self, tools: Sequence[Any], tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[Any, AIMessage]:
        """This model with ``tools`` offered on every call.

        ``tools``: pydantic model classes, typed functions, OpenAI tool dicts, or objects with
        ``to_openai_tool()``. ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` (or ``"any"``),
        a tool's name, or ``True`` to force the only tool. Extra ``kwargs`` (``parallel_tool_calls``
        …) are bound too.
        """
        from ..core.wrappers import Binding

        schemas = to_openai_tools(tools)
        bound: dict[str, Any] = {"tools": schemas, **kwargs}
        choice = normalize_tool_choice(tool_choice, schemas)
        if choice is not None:
            bound["tool_choice"] = choice
        return Binding.wrap(self, kwargs=bound)

    def with_structured_output(
        self,
        schema: type[BaseModel],
        *,
        method: Literal["auto", "json_schema", "tool"] = "auto",
        strict: bool | None = None,
    ) -> Runnable[Any, Any]:
        """A step that returns a validated instance of the pydantic model ``schema``.

        ``method="auto"`` (default) uses what the endpoint supports and repairs one bad reply
        (:mod:`maru.models.adaptive`); ``method="json_schema"`` asks for JSON output through
        ``response_format``; ``"tool"`` forces a call of a tool shaped like ``schema`` (for servers
        without JSON-schema output). Output that
        does not parse or validate raises :class:`maru.errors.OutputParserError` showing the raw text.
        """
        from .structured import structured_output

        return structured_output(self, schema, method=method, strict=strict)


# --------------------------------------------------------------------------- helpers
def _normalize(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if v is not None}
    stop = out.get("stop")
    if isinstance(stop, str):
        out["stop"] = [stop]
    tools = out.get("tools")
    if tools is not None:
        out["tools"] = [to_openai_tool(t) for t in tools]
        if "tool_choice" in out:
            out["tool_choice"] = normalize_tool_choice(out["tool_choice"], out["tools"])
    response_format = out.get("response_format")
    if isinstance(response_format, type):
        from .structured import json_schema_format

        out["response_format"] = json_schema_format(response_format)
    return out
