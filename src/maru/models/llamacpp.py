"""``LlamaCppChat``: a GGUF chat model run in this process by llama.cpp (``llama-cpp-python``).

With nothing configured this is maru's default model: the bundled SmolLM2-135M-Instruct (see
:mod:`maru.models.bundled`), so every LLM feature answers offline, with no key and no server. Any
GGUF file works (``model_path=`` or ``MARU_LOCAL_MODEL``). The chat template comes from the GGUF
file. Tool calls and JSON answers are produced by grammar-constrained decoding
(:mod:`maru.models.constrained`), so even a 135M model returns parseable objects.

One llama.cpp context is not safe to use from two threads at once, and a second context would
double the memory for little gain on a CPU that the first already saturates; so calls share one
context behind a lock (a stream holds it until it ends or is closed). Each request starts from an
empty context: reusing a cached prompt prefix evaluates the prompt in different batches, which
changes floating-point sums enough to change greedy output, and the same request must give the
same answer. ``llama_cpp`` is imported
when the model is first used, never by ``import maru``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..messages import AIMessage, AIMessageChunk, BaseMessage, Usage
from .base import ChatModel, message_to_chunk
from .bundled import local_model_path
from .constrained import ReplyPlan, plan_reply
from .refusals import with_system_note

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["LlamaCppChat"]

_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed",
             "repeat_penalty", "presence_penalty", "frequency_penalty")
"""Request parameters passed to llama.cpp as they are; tools and formats become a grammar."""

_MIN_JSON_TOKENS = 256
_ids = itertools.count(1)


class LlamaCppChat(ChatModel):
    """A local GGUF model behind the :class:`ChatModel` interface (invoke, stream, batch, async).

    Defaults suit a small model: greedy decoding (``temperature=0``, deterministic), ``seed=0``,
    ``max_tokens=256`` (a 135M model that goes on longer mostly repeats itself), a mild
    ``repeat_penalty``. ``n_ctx`` is the context window in tokens, ``n_threads`` the CPU threads
    (llama.cpp's default when ``None``). A request parameter ``grammar`` (GBNF text) holds a
    free-text reply to that grammar; tools and JSON formats bring their own grammar, which wins.
    """

    accepts_grammar = True
    """Callers may pass ``grammar=`` (see :func:`maru.sql.grammar.select_grammar`)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int = 0,
        repeat_penalty: float = 1.1,
        cache: Any = None,
        verbose: bool = False,
        **defaults: Any,
    ) -> None:
        self.model_path: Path = local_model_path(model_path)
        super().__init__(
            cache=cache,
            model=self.model_path.stem,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            repeat_penalty=repeat_penalty,
            **defaults,
        )
        self._options = {"n_ctx": n_ctx, "n_threads": n_threads, "seed": seed, "verbose": verbose}
        self._llama: Llama | None = None
        self._lock = threading.Lock()

    @property
    def provider(self) -> str:
        return "llama.cpp"

    @property
    def local(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"LlamaCppChat(model={self.model_name!r}, path={str(self.model_path)!r})"

    # ----------------------------------------------------------------- the context
    def llama(self) -> Llama:
        """The loaded ``llama_cpp.Llama`` (loaded on first use, once)."""
        if self._llama is None:
            with self._lock:
                if self._llama is None:
                    self._llama = _load(self.model_path, self._options)
        return self._llama

    # ----------------------------------------------------------------- provider hooks
    def _generate(self, messages: list[BaseMessage], params: dict[str, Any]) -> AIMessage:
        plan = plan_reply(params)
        request = self._request(messages, params, plan)
        llama = self.llama()
        with self._lock:
            llama.reset()
            result: Any = llama.create_chat_completion(**request)  # a dict (llama_cpp's TypedDicts)
        choice = result["choices"][0]
        content, calls = plan.read(choice["message"].get("content") or "")
        usage = result.get("usage") or {}
        return AIMessage(
            content=content,
            id=result.get("id") or f"llamacpp-{next(_ids)}",
            tool_calls=calls,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            response_metadata=self._metadata(choice.get("finish_reason")),
        )

    def _stream_chunks(
        self, messages: list[BaseMessage], params: dict[str, Any]
    ) -> Iterator[AIMessageChunk]:
        plan = plan_reply(params)
        if not plan.free_text:
            # A JSON reply means nothing until it is whole: decode it, then hand it on at once.
            yield message_to_chunk(self._generate(messages, params))
            return
        request = self._request(messages, params, plan)
        llama = self.llama()
        with self._lock:
            llama.reset()
            yield from _stream(llama, request, self._metadata)

    # ----------------------------------------------------------------- requests
    def _request(
        self, messages: list[BaseMessage], params: dict[str, Any], plan: ReplyPlan
    ) -> dict[str, Any]:
        request: dict[str, Any] = {k: params[k] for k in _SAMPLING if k in params}
        request["messages"] = to_llama_messages(messages, plan.note)
        if plan.schema is not None:
            request["grammar"] = _grammar(json.dumps(plan.schema))
            # half a JSON object is no answer: a constrained reply gets room to close it
            request["max_tokens"] = max(request.get("max_tokens") or 0, _MIN_JSON_TOKENS)
        elif isinstance(params.get("grammar"), str):
            request["grammar"] = _gbnf(self.llama(), params["grammar"])
        return request

    def _metadata(self, finish_reason: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"model_name": self.model_name}
        if finish_reason:
            metadata["finish_reason"] = finish_reason
        return metadata


# --------------------------------------------------------------------------- helpers
def to_llama_messages(messages: list[BaseMessage], note: str | None = None) -> list[dict[str, str]]:
    """Messages for a chat template that knows only roles and text (``note`` joins the system
    message): a tool call is written as the JSON the grammar makes the model write, a tool result
    as a user turn that names the tool."""
    if note:
        messages = with_system_note(messages, note)
    return [
        _llama_message(m.to_message() if isinstance(m, AIMessageChunk) else m) for m in messages
    ]


def _llama_message(message: BaseMessage) -> dict[str, str]:
    role = message.role
    if role == "assistant" and getattr(message, "tool_calls", None):
        call = message.tool_calls[0]  # type: ignore[attr-defined]
        text = json.dumps({"name": call.name, "arguments": call.args}, ensure_ascii=False)
        return {"role": "assistant", "content": text}
    if role == "tool":
        name = message.name or "the tool"
        return {"role": "user", "content": f"Result of {name}: {message.text}"}
    if not role:
        raise TypeError(f"cannot send a {type(message).__name__} to a chat model: it has no role")
    return {"role": role, "content": message.text}


def _stream(
    llama: Llama, request: dict[str, Any], metadata: Any
) -> Iterator[AIMessageChunk]:
    """Stream one free-text request; the last chunk carries the usage and the finish reason."""
    completion_tokens = 0
    finish_reason = None
    first = True
    events: Iterator[Any] = llama.create_chat_completion(stream=True, **request)  # type: ignore[assignment]
    for event in events:
        choice = event["choices"][0]
        finish_reason = choice.get("finish_reason") or finish_reason
        text = choice["delta"].get("content") or ""
        if not text:
            continue
        completion_tokens += 1
        yield AIMessageChunk(
            content=text,
            id=event.get("id") if first else None,
            response_metadata=metadata(None) if first else {},
        )
        first = False
    prompt_tokens = max(llama.n_tokens - completion_tokens, 0)
    yield AIMessageChunk(
        usage=Usage(prompt_tokens, completion_tokens),
        response_metadata={"finish_reason": finish_reason} if finish_reason else {},
    )


def _load(path: Path, options: dict[str, Any]) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ConfigurationError(
            'the local model needs llama-cpp-python: pip install "maru[local]"'
        ) from exc
    llama = Llama(model_path=str(path), **{k: v for k, v in options.items() if v is not None})
    atexit.register(_close, weakref.ref(llama))
    return llama


def _close(ref: weakref.ref[Llama]) -> None:
    """Free the context at exit while the interpreter is whole: left to ``Llama.__del__`` during
    shutdown, the C library's bindings are already gone and it prints a traceback."""
    llama = ref()
    if llama is not None:
        llama.close()


def _grammar(schema_json: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def _gbnf(llama: Llama, text: str) -> Any:
    """A grammar from GBNF text, parsed once first: llama.cpp crashes the whole process on a
    grammar it cannot parse, so a bad one must fail here, as an exception."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
    if not sampler:
        raise ValueError("the grammar is not valid GBNF; llama.cpp printed where its parse stopped")
    llama_cpp.llama_sampler_free(sampler)
    return llama_cpp.LlamaGrammar.from_string(text, verbose=False)
