"""``OpenAIChat``: any OpenAI-compatible chat-completions server through the official ``openai`` SDK.

One class serves OpenAI, Gemini's OpenAI-compatible endpoint, vLLM, Ollama and llama.cpp: only
``base_url``, ``api_key`` and ``model`` change. The SDK is imported on first use, never when
``maru.models`` is imported.

Errors: the SDK retries rate limits (429), timeouts, connection errors and 5xx itself, up to
``max_retries`` times. What still fails after that is raised as the SDK's own exception
(``openai.RateLimitError``, ``openai.InternalServerError``, ``openai.APITimeoutError``,
``openai.APIConnectionError``) with a note saying what to do, so ``.with_retry(retry_on=...)`` and
``.with_fallbacks(...)`` can target transient failures precisely. Errors that retrying cannot fix
(400, 401, 403, 404, 422 …) become :class:`maru.errors.ProviderError` with a message that says what
to change, the SDK exception kept as ``__cause__``. The API key never appears in a repr or message.

A stream that ends without a single event (llama.cpp's server cannot stream tools with
``tool_choice="auto"``: it answers 200 and sends nothing) is asked for again without streaming and
yielded as one chunk, rather than passing for an empty reply.

``tool_choice="required"`` works where the server lacks it (llama.cpp's server answers it with HTTP
500): with one tool bound the request names that tool instead, which means the same; with several,
a refusal switches the endpoint, once per process, to ``"auto"`` plus a system note that asks for a
tool call (:mod:`maru.models.refusals`).

A server on a loopback address is ``local``: a model with no known price costs 0 there, not
"unknown" (:func:`maru.usage.prices.cost_for`).
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError, ProviderError, ToolCallError
from ..messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall, ToolCallChunk, Usage
from .base import ChatModel
from .chunks import message_to_chunk
from .refusals import FallbackMemory, endpoint_key, names_any, with_system_note
from .tools_schema import tool_name

if TYPE_CHECKING:
    import asyncio

    import openai

__all__ = ["DEFAULT_MODEL", "OpenAIChat", "to_openai_messages"]

log = logging.getLogger("maru.models")

DEFAULT_MODEL = "gpt-4o-mini"
"""Used only against OpenAI itself (no base URL) when neither ``model=`` nor ``MARU_MODEL`` is set."""

_NO_KEY = "no-key"
"""Sent to local servers that need no key; the SDK insists on some value."""


_PROVIDER_HOSTS = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure.ai.openai"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.x.ai", "x_ai"),
)
"""Hosts of OpenAI-compatible services and their ``gen_ai.provider.name``."""

_REQUIRED_REFUSED = FallbackMemory()
"""Endpoints at 1 refused ``tool_choice="required"``; their requests emulate it."""

_TOOL_CHOICE_WORDS = ("tool_choice", "tool choice")

_CALL_A_TOOL = "Reply only by calling one of these tools: {names}. Do not answer in text."

_EMPTY_STREAM = "%s ended a stream without sending anything; asking again without streaming"


class _Secret:
    """Holds the API key so that no repr, f-string or traceback of the model shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__


class OpenAIChat(ChatModel):
    """A chat model served over the OpenAI chat-completions API.

    ``model`` defaults to ``$MARU_MODEL`` (then to ``DEFAULT_MODEL`` when talking to OpenAI itself);
    ``base_url`` to ``$OPENAI_BASE_URL``; ``api_key`` to ``$OPENAI_API_KEY``. A local server (a base
    URL but no key) gets a placeholder key. ``timeout`` is seconds per request attempt. Extra keyword
    arguments (``top_p``, ``seed``, ``reasoning_effort`` …) become default request parameters;
    parameters the SDK does not know are sent in the request body as they are (``extra_body``), so
    server-specific options such as vLLM's ``top_k`` work. ``stream_usage=False`` stops asking for
    the final usage chunk, for old servers that reject ``stream_options``.

    Only the first choice is read (``n`` > 1 is not supported).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = 60,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        stream_usage: bool = True,
        **extra: Any,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        model = (
            model or os.environ.get("MARU_MODEL") or (DEFAULT_MODEL if base_url is None else None)
        )
        if not model:
            raise ConfigurationError(
                f"OpenAIChat needs a model name for the server at {base_url}: pass model=... "
                "or set MARU_MODEL"
            )
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if base_url is None:
                raise ConfigurationError(
                    "OpenAIChat has no API key: set OPENAI_API_KEY or pass api_key=...; for a local "
                    "OpenAI-compatible server (vLLM, Ollama, llama.cpp) that needs no key, set "
                    "OPENAI_BASE_URL or pass base_url=... instead"
                )
            key = _NO_KEY
        super().__init__(model=model, temperature=temperature, max_tokens=max_tokens, **extra)
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self.stream_usage = stream_usage
        self._api_key = _Secret(key)
        self._lock = threading.Lock()
        self._client: openai.OpenAI | None = None
        self._aclient: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI] | None = None

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"OpenAIChat(model={self.model_name!r}{where})"

    @property
    def provider(self) -> str:
        """``openai``, or the well-known service behind ``base_url``; any other OpenAI-compatible
        server (vLLM, Ollama, llama.cpp) reports ``openai``, the API it speaks."""
        host = (urlsplit(self.base_url).hostname or "") if self.base_url else ""
        for suffix, name in _PROVIDER_HOSTS:
            if host == suffix or host.endswith("." + suffix):
                return name
        return "openai"

    @property
    def local(self) -> bool:
        """Whether ``base_url`` is on this machine (``localhost`` or a loopback address): such a
        server is the user's own, so a model with no known price costs 0 there."""
        host = (urlsplit(self.base_url).hostname or "") if self.base_url else ""
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    # ----------------------------------------------------------------- clients
    def _client_options(self) -> dict[str, Any]:
        return {
            "api_key": self._api_key.get(),
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "default_headers": self.default_headers or None,
        }

    @property
    def client(self) -> openai.OpenAI:
        """The SDK's sync client, created on first use and shared by every call (one connection pool)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import openai

                    self._client = openai.OpenAI(**self._client_options())
        return self._client

    @property
    def async_client(self) -> openai.AsyncOpenAI:
        """The SDK's async client for the running event loop, created once per loop: an async
        connection pool belongs to the loop that opened it, so a new loop needs a new client."""
        import asyncio

        loop = asyncio.get_running_loop()
        held = self._aclient
        if held is None or held[0] is not loop:
            import openai

            held = self._aclient = (loop, openai.AsyncOpenAI(**self._client_options()))
        return held[1]

    # ----------------------------------------------------------------- provider hooks
    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        return _from_completion(self._create(messages, params))

    async def _agenerate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        return _from_completion(await self._acreate(messages, params))

    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        stream = self._create(messages, params, stream=True)
        state = _StreamState()
        with self._errors(params), stream:
            for event in stream:
                chunk = state.read(event)
                if chunk is not None:
                    yield chunk
        if not state.seen:
            log.info(_EMPTY_STREAM, self._where())
            yield message_to_chunk(self._generate(messages, params))
            return
        final = state.final()
        if final is not None:
            yield final

    async def _astream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[AIMessageChunk]:
        stream = await self._acreate(messages, params, stream=True)
        state = _StreamState()
        with self._errors(params):
            async with stream:
                async for event in stream:
                    chunk = state.read(event)
                    if chunk is not None:
                        yield chunk
        if not state.seen:
            log.info(_EMPTY_STREAM, self._where())
            yield message_to_chunk(await self._agenerate(messages, params))
            return
        final = state.final()
        if final is not None:
            yield final

    # ----------------------------------------------------------------- requests and errors
    def _create(self, messages: list[BaseMessage], params: dict[str, Any], stream: bool = False) -> Any:
        """The SDK's response (a stream when ``stream``), sent again once in the endpoint's own
        terms when it refuses ``tool_choice="required"``."""
        request = self._request(messages, params, stream)
        try:
            with self._errors(params):
                return self.client.chat.completions.create(**request)
        except Exception as exc:
            if not self._refused_required(request, exc):
                raise
        with self._errors(params):
            return self.client.chat.completions.create(**self._request(messages, params, stream))

    async def _acreate(
        self, messages: list[BaseMessage], params: dict[str, Any], stream: bool = False
    ) -> Any:
        """Async twin of ``_create``."""
        request = self._request(messages, params, stream)
        try:
            with self._errors(params):
                return await self.async_client.chat.completions.create(**request)
        except Exception as exc:
            if not self._refused_required(request, exc):
                raise
        with self._errors(params):
            return await self.async_client.chat.completions.create(
                **self._request(messages, params, stream)
            )

    def _refused_required(self, request: Mapping[str, Any], exc: Exception) -> bool:
        """Whether ``exc`` refuses the request's ``tool_choice="required"`` (the error names
        tool_choice, or the server gave no reason at all); if so, remember it for this endpoint."""
        if request.get("tool_choice") != "required" or _status_error(exc) is None:
            return False
        if not (names_any(exc, _TOOL_CHOICE_WORDS) or _says_nothing(exc)):
            return False
        _REQUIRED_REFUSED.remember(endpoint_key(self), 1)
        log.info(
            "%s refused tool_choice='required'; asking for a tool call with 'auto' and a system note",
            self._where(),
        )
        return True

    def _require_a_tool(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> tuple[list[BaseMessage], dict[str, Any]]:
        """``tool_choice="required"`` as this endpoint takes it: the one bound tool by name (the same
        meaning, and servers without "required" still force a named tool), or, where the endpoint
        refused "required" before, ``"auto"`` and a system note asking for a tool call."""
        if params.get("tool_choice") != "required":
            return messages, params
        tools = params.get("tools") or ()
        names = [tool_name(tool) for tool in tools]
        if len(names) == 1:
            return messages, {**params, "tool_choice": {"type": "function", "function": {"name": names[0]}}}
        if not _REQUIRED_REFUSED.start(endpoint_key(self)):
            return messages, params
        note = _CALL_A_TOOL.format(names=", ".join(names))
        return with_system_note(messages, note), {**params, "tool_choice": "auto"}

    def _request(
        self, messages: list[BaseMessage], params: dict[str, Any], stream: bool = False
    ) -> dict[str, Any]:
        """The SDK ``create()`` arguments: known parameters as they are, the rest in ``extra_body``."""
        messages, params = self._require_a_tool(messages, params)
        known = _create_parameters()
        request: dict[str, Any] = {"messages": to_openai_messages(messages)}
        extra: dict[str, Any] = {}
        for key, value in params.items():
            if key in known:
                request[key] = value
            else:
                extra[key] = value
        if extra:
            request["extra_body"] = {**extra, **(request.get("extra_body") or {})}
        if stream:
            request["stream"] = True
            if self.stream_usage:
                request["stream_options"] = {"include_usage": True}
        return request

    @contextmanager
    def _errors(self, params: Mapping[str, Any]) -> Iterator[None]:
        import openai

        try:
            yield
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status in (408, 409, 429) or status >= 500:
                exc.add_note(self._gave_up_note())
                raise
            raise self._provider_error(exc, params) from exc
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            exc.add_note(self._gave_up_note())
            if not isinstance(exc, openai.APITimeoutError):
                exc.add_note(f"maru: is the server at {self._where()} running and reachable?")
            raise

    def _where(self) -> str:
        return self.base_url or "https://api.openai.com/v1"

    def _gave_up_note(self) -> str:
        return (
            f"maru: {self._where()} still failed after {self.max_retries} SDK retries; raise "
            "max_retries=/timeout=, or wrap the step with .with_retry() or .with_fallbacks()"
        )

    def _provider_error(
        self, exc: openai.APIStatusError, params: Mapping[str, Any]
    ) -> ProviderError:
        status = exc.status_code
        detail = self._redact(_error_detail(exc))
        where = f"the server at {self._where()}"
        model = params.get("model", self.model_name)
        if status == 401:
            hint = "Set OPENAI_API_KEY or pass api_key= with a key valid for this endpoint" + (
                "" if self.base_url else "; for a local server set OPENAI_BASE_URL or base_url="
            )
            message = f"{where} rejected the API key (HTTP 401: {detail}). {hint}."
        elif status == 403:
            message = (
                f"{where} refused access (HTTP 403: {detail}). The key may lack access to model "
                f"{model!r}: check the key's project and permissions, or choose another model."
            )
        elif status == 404:
            message = (
                f"{where} answered 404 ({detail}). Check the model name {model!r} (model= or "
                "MARU_MODEL) and that base_url is the OpenAI-compatible API root (usually ending in /v1)."
            )
        else:
            message = (
                f"{where} rejected the request (HTTP {status}: {detail}). Check the parameters "
                f"sent ({', '.join(sorted(params))}) against what model {model!r} supports."
            )
        error = ProviderError(message)
        error.status_code = status  # type: ignore[attr-defined]
        return error

    def _redact(self, text: str) -> str:
        key = self._api_key.get()
        return text.replace(key, "**********") if len(key) >= 8 else text


# --------------------------------------------------------------------------- wire format
def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """maru messages as chat-completions messages: assistant tool calls with JSON-string arguments,
    tool results with their ``tool_call_id``."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, AIMessageChunk):
            message = message.to_message()
        role = message.role
        if role == "assistant":
            tool_calls = message.tool_calls  # type: ignore[attr-defined]
            item: dict[str, Any] = {
                "role": role,
                "content": message.content or (None if tool_calls else ""),
            }
            if tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.args, ensure_ascii=False),
                        },
                    }
                    for call in tool_calls
                ]
        elif role == "tool":
            item = {"role": role, "tool_call_id": message.tool_call_id, "content": message.content}  # type: ignore[attr-defined]
            wire.append(item)
            continue
        elif role:
            item = {"role": role, "content": message.content}
        else:
            raise TypeError(
                f"cannot send a {type(message).__name__} to a chat model: it has no role"
            )
        if message.name:
            item["name"] = message.name
        wire.append(item)
    return wire


@functools.cache
def _create_parameters() -> frozenset[str]:
    """The parameters the installed SDK's ``create()`` accepts (read once)."""
    from openai.resources.chat.completions import Completions

    return frozenset(inspect.signature(Completions.create).parameters) - {
        "self",
        "messages",
        "stream",
    }


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, cached)


def _tool_call(call: Any) -> ToolCall:
    function = getattr(call, "function", None)
    if function is None:
        raise ToolCallError(
            f"unsupported tool call type {getattr(call, 'type', '?')!r}: only function tools are read"
        )
    raw = function.arguments or ""
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolCallError(
            f"the model called tool {function.name!r} with arguments that are not valid JSON: {raw!r:.200}"
        ) from exc
    return ToolCall(name=function.name, args=args, id=call.id or "")


def _from_completion(response: Any) -> AIMessage:
    if not response.choices:
        raise ProviderError(f"the server returned no choices for model {response.model!r}")
    choice = response.choices[0]
    message = choice.message
    metadata: dict[str, Any] = {"model_name": response.model, "finish_reason": choice.finish_reason}
    if getattr(message, "refusal", None):
        metadata["refusal"] = message.refusal
    return AIMessage(
        content=message.content or "",
        id=response.id,
        tool_calls=[_tool_call(c) for c in message.tool_calls or ()],
        usage=_usage(response.usage),
        response_metadata=metadata,
    )


class _StreamState:
    """Turns SDK stream events into chunks whose sum equals the non-streamed message: the id and
    model name ride on the first chunk, usage (the last one a server reports) on a final chunk.
    ``seen`` stays False for a stream with no event at all: a server that cannot stream a request
    (llama.cpp's, for tools with ``tool_choice="auto"``) answers 200 and closes the stream."""

    __slots__ = ("first", "seen", "usage", "refusal")

    def __init__(self) -> None:
        self.first = True
        self.seen = False
        self.usage: Any = None
        self.refusal = ""

    def read(self, event: Any) -> AIMessageChunk | None:
        self.seen = True
        if event.usage is not None:
            self.usage = event.usage
        if not event.choices:
            return None
        choice = event.choices[0]
        delta = choice.delta
        calls = [
            ToolCallChunk(
                index=tc.index if tc.index is not None else i,
                id=tc.id or "",
                name=(tc.function.name or "") if tc.function else "",
                args=(tc.function.arguments or "") if tc.function else "",
            )
            for i, tc in enumerate(delta.tool_calls or ())
        ]
        metadata: dict[str, Any] = {}
        chunk_id = None
        if self.first:
            self.first = False
            metadata["model_name"] = event.model
            chunk_id = event.id
        if choice.finish_reason:
            metadata["finish_reason"] = choice.finish_reason
        if getattr(delta, "refusal", None):
            self.refusal += delta.refusal
        return AIMessageChunk(
            content=delta.content or "",
            id=chunk_id,
            tool_call_chunks=calls,
            response_metadata=metadata,
        )

    def final(self) -> AIMessageChunk | None:
        if self.usage is None and not self.refusal:
            return None
        return AIMessageChunk(
            usage=_usage(self.usage),
            response_metadata={"refusal": self.refusal} if self.refusal else {},
        )


def _status_error(exc: BaseException) -> openai.APIStatusError | None:
    """The SDK's HTTP status error behind ``exc`` (itself, or the cause of a ProviderError)."""
    import openai

    for error in (exc, exc.__cause__):
        if isinstance(error, openai.APIStatusError):
            return error
    return None


def _says_nothing(exc: BaseException) -> bool:
    """A 4xx or 500 whose body gives no message: llama.cpp's server fails an assertion on
    ``tool_choice="required"`` and answers 500 with an empty message. (502-504 come from gateways
    and outages, never from a request the server read.)"""
    error = _status_error(exc)
    if error is None or not 400 <= error.status_code <= 500:
        return False
    body = error.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        return isinstance(inner, Mapping) and not str(inner.get("message") or "").strip()
    return not body


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        return str(error)
    return str(body) if body else exc.message
