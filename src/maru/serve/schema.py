"""What a runnable takes and returns, read from what it is: the types behind the OpenAPI document
and the request validation of :func:`maru.serve.create_app`.

:func:`infer_types` looks at known classes without asking anything of them:

- a function step (``Lambda``): the function's annotations (first positional parameter, return);
  a generator step's ``Iterator[X]`` annotations give ``X``;
- a sequence: the first step's input and the last step's output;
- a parallel map: the common input of its branches, and an object whose fields are the branches'
  outputs;
- a prompt (anything with ``input_variables``): an object with one field per variable — scalars
  (``str | int | float | bool``), a list of messages for a message placeholder; optional
  variables may be left out; a prompt with one variable also takes the bare value;
- a chat model: a string or a list of message dicts in, an AI message dict out;
- an output parser: a string or a message in, the parser's result out;
- ``bind`` / ``with_config`` / retry / fallbacks: the wrapped step;
- anything else: ``Any``.

Types are returned in their *wire* form: where the Python side has a chat message, the wire has a
message dict (:class:`ChatMessage` in, :class:`AIMessageOutput` / :class:`MessageOutput` out).
:func:`decode_input` turns a validated request value back into what the runnable expects (message
dicts into messages, generated prompt objects into plain dicts). A type pydantic cannot describe
becomes ``Any`` rather than an error.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import re
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

__all__ = [
    "AIMessageOutput",
    "ChatMessage",
    "ChatPromptValueOutput",
    "MessageOutput",
    "StringPromptValueOutput",
    "decode_input",
    "infer_types",
    "wire_type",
]

Scalar = str | int | float | bool
"""What a prompt variable takes on the wire (templates format any value; these are the JSON ones)."""


# =============================================================================== wire models
class WireModel(BaseModel):
    """Base of the models generated here. :func:`decode_input` turns an instance back into a plain
    dict keyed by field alias (a prompt's variable names)."""

    model_config = ConfigDict(extra="forbid")


class ChatMessage(BaseModel):
    """A chat message as a dict, the shape of ``maru.messages`` ``to_dict()`` (OpenAI-like roles)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "human", "assistant", "ai", "tool"]
    content: str | list[dict[str, Any]] = ""
    name: str | None = None
    id: str | None = None
    metadata: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    status: Literal["success", "error"] | None = None

    def to_message(self) -> Any:
        from ..messages import message_from_dict

        return message_from_dict(self.model_dump(exclude_none=True))


class ToolCallOutput(BaseModel):
    id: str = ""
    name: str
    args: dict[str, Any]


class UsageOutput(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class MessageOutput(BaseModel):
    """Any chat message as ``to_dict()`` writes it."""

    role: str
    content: str | list[dict[str, Any]]
    name: str | None = None
    id: str | None = None
    metadata: dict[str, Any] | None = None
    tool_calls: list[ToolCallOutput] | None = None
    tool_call_id: str | None = None
    usage: UsageOutput | None = None
    response_metadata: dict[str, Any] | None = None


class AIMessageOutput(BaseModel):
    """A model's answer as ``AIMessage.to_dict()`` writes it. In a stream, each chunk has this shape
    (plus ``tool_call_chunks`` while a tool call is being streamed)."""

    role: Literal["assistant"] = "assistant"
    content: str | list[dict[str, Any]]
    name: str | None = None
    id: str | None = None
    metadata: dict[str, Any] | None = None
    tool_calls: list[ToolCallOutput] | None = None
    usage: UsageOutput | None = None
    response_metadata: dict[str, Any] | None = None


class ChatPromptValueOutput(BaseModel):
    """A chat prompt's output: the formatted messages."""

    messages: list[MessageOutput]


class StringPromptValueOutput(BaseModel):
    """A text prompt's output: the formatted text."""

    text: str


# =============================================================================== inference
def infer_types(runnable: Any) -> tuple[Any, Any]:
    """``(input_type, output_type)`` of ``runnable`` in wire form; ``Any`` where nothing is known."""
    input_type, output_type = _types(runnable, 0)
    return _describable(input_type), _describable(output_type)


def infer_kwarg_types(runnable: Any, names: cabc.Iterable[str]) -> dict[str, Any]:
    """The types of the keyword arguments ``names`` that ``runnable`` (a function step, possibly
    bound, retried or with fallbacks) annotates; the others are left out."""
    from ..core.runnable import Lambda
    from ..core.wrappers import Binding, Fallbacks, Retry

    step, depth = runnable, 0
    while isinstance(step, Binding | Retry | Fallbacks) and depth < 64:
        step, depth = step.bound, depth + 1
    if not isinstance(step, Lambda):
        return {}
    try:
        hints = typing.get_type_hints(step.fn)
    except Exception:  # unresolvable forward references, callables without annotations …
        return {}
    return {name: _describable(hints[name]) for name in names if name in hints and name != "return"}


def wire_type(tp: Any, *, out: bool) -> Any:
    """A type the caller gives for the input (``out=False``) or the output, in the wire form that
    :func:`infer_types` returns."""
    return _describable(_wire(tp, out=out))


def _types(step: Any, depth: int) -> tuple[Any, Any]:
    if depth > 64:  # a pathological nesting: give up rather than recurse forever
        return Any, Any
    from ..core.compose import Parallel, Sequence
    from ..core.runnable import Lambda
    from ..core.wrappers import Binding, Fallbacks, Retry

    if isinstance(step, Binding | Retry | Fallbacks):
        return _types(step.bound, depth + 1)
    if isinstance(step, Sequence):
        return _types(step.steps[0], depth + 1)[0], _types(step.steps[-1], depth + 1)[1]
    if isinstance(step, Parallel):
        return _parallel_types(step, depth)
    if isinstance(step, Lambda):
        return _function_types(step.fn)

    from ..models.base import ChatModel
    from ..parsers import BaseOutputParser

    if isinstance(step, ChatModel):
        return str | list[ChatMessage], AIMessageOutput
    if isinstance(step, BaseOutputParser):
        return str | ChatMessage, _parser_output(step)
    if isinstance(getattr(step, "input_variables", None), list | tuple):
        return _prompt_types(step)
    return Any, Any


def _parallel_types(step: Any, depth: int) -> tuple[Any, Any]:
    branches = {key: _types(sub, depth + 1) for key, sub in step.steps.items()}
    known = [t for t, _ in branches.values() if t is not Any]
    # Every branch gets the same input: name it only when the branches agree on it.
    input_type = known[0] if known and all(t == known[0] for t in known) else Any
    fields = {key: out for key, (_, out) in branches.items()}
    return input_type, _object_model(f"{_model_name(step)}Output", fields, required=set(fields))


def _function_types(fn: Any) -> tuple[Any, Any]:
    call = None if inspect.isroutine(fn) else type(fn).__call__  # a callable object's method
    target = fn if call is None else call
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references, builtins without annotations …
        hints = {}
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "config"
    ]
    input_type = hints.get(positional[0].name, Any) if positional else Any
    output_type = hints.get("return", Any)

    is_generator = any(
        inspect.isgeneratorfunction(c) or inspect.isasyncgenfunction(c) for c in (fn, call) if c
    )
    if is_generator:  # a stream transform: Iterator[X] -> Iterator[Y] means X -> Y
        input_type, output_type = _item_type(input_type), _item_type(output_type)
    if _is_runnable_type(output_type):  # a routing function: the output is the chosen step's
        output_type = Any
    return _wire(input_type, out=False), _wire(output_type, out=True)


_ITERATORS = (
    cabc.Iterator,
    cabc.Iterable,
    cabc.Generator,
    cabc.AsyncIterator,
    cabc.AsyncIterable,
    cabc.AsyncGenerator,
)


def _item_type(tp: Any) -> Any:
    if get_origin(tp) in _ITERATORS:
        args = get_args(tp)
        return args[0] if args else Any
    return Any


def _is_runnable_type(tp: Any) -> bool:
    from ..core.runnable import Runnable

    target = get_origin(tp) or tp
    return isinstance(target, type) and issubclass(target, Runnable)


def _parser_output(parser: Any) -> Any:
    from ..parsers import JsonOutputParser, PydanticOutputParser, StrOutputParser

    if isinstance(parser, StrOutputParser):
        return str
    if isinstance(parser, PydanticOutputParser | JsonOutputParser):
        target = getattr(parser, "pydantic_object", None)
        return Any if target is None else _wire(target, out=True)
    try:
        hints = typing.get_type_hints(type(parser).parse)
    except Exception:
        return Any
    out = hints.get("return", Any)
    return Any if isinstance(out, typing.TypeVar) else _wire(out, out=True)


def _prompt_types(prompt: Any) -> tuple[Any, Any]:
    from ..prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate

    required = [str(v) for v in prompt.input_variables]
    optional = [str(v) for v in getattr(prompt, "optional_variables", None) or () if v not in required]
    placeholders = {
        entry.variable_name
        for entry in getattr(prompt, "messages", None) or ()
        if isinstance(entry, MessagesPlaceholder)
    }
    fields = {v: (list[ChatMessage] if v in placeholders else Scalar) for v in (*required, *optional)}
    model = _object_model(
        f"{_model_name(prompt)}Input",
        fields,
        required=set(required),
        extra="allow" if getattr(prompt, "allow_extra", False) else "forbid",
    )
    input_type: Any = model
    if len(required) == 1 and not optional:  # the prompt takes the bare value too
        input_type = Union[model, fields[required[0]]]  # noqa: UP007 (built at run time)
    if isinstance(prompt, ChatPromptTemplate):
        output_type: Any = ChatPromptValueOutput
    elif isinstance(prompt, PromptTemplate):
        output_type = StringPromptValueOutput
    else:
        output_type = Any
    return input_type, output_type


# =============================================================================== helpers
def _model_name(step: Any) -> str:
    name = re.sub(r"\W+", "", str(getattr(step, "name", "") or type(step).__name__))
    return name[:1].upper() + name[1:] if name else "Step"


def _object_model(
    name: str, fields: dict[str, Any], *, required: set[str], extra: str = "forbid"
) -> type[WireModel]:
    """A model whose JSON fields are exactly ``fields``' keys, whatever they are (``json``,
    ``model_config`` or ``my-key`` are fine): each field is stored under a safe name and carries the
    key as its alias."""
    definitions: dict[str, Any] = {}
    for i, (key, tp) in enumerate(fields.items()):
        if key in required:
            definitions[f"f{i}"] = (tp, Field(alias=key))
        else:
            definitions[f"f{i}"] = (typing.Optional[tp], Field(default=None, alias=key))  # noqa: UP045
    return create_model(
        name,
        __base__=_object_base(extra),
        **definitions,
    )


_BASES: dict[str, type[WireModel]] = {}


def _object_base(extra: str) -> type[WireModel]:
    base = _BASES.get(extra)
    if base is None:
        base = type(
            f"WireModel_{extra}",
            (WireModel,),
            {"model_config": ConfigDict(extra=extra, populate_by_name=False)},  # type: ignore[typeddict-item]
        )
        _BASES[extra] = base
    return base


_SEQUENCES = (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def _wire(tp: Any, *, out: bool) -> Any:
    """``tp`` with chat messages replaced by their dict models (recursively through unions, lists,
    tuples, dicts and ``Annotated``). Other types are left for pydantic."""
    from ..messages import AIMessage, BaseMessage

    if tp is Any or tp is inspect.Parameter.empty:
        return Any
    if isinstance(tp, type):
        if issubclass(tp, BaseMessage):
            if not out:
                return ChatMessage
            return AIMessageOutput if issubclass(tp, AIMessage) else MessageOutput
        return tp
    origin, args = get_origin(tp), get_args(tp)
    if origin is None or not args:
        return tp
    if origin is Annotated:
        return Annotated[(_wire(args[0], out=out), *tp.__metadata__)]
    if origin is Union or origin is types.UnionType:
        return Union[tuple(_wire(a, out=out) for a in args)]  # noqa: UP007
    if origin is Literal:
        return tp
    if origin in _SEQUENCES:
        return types.GenericAlias(list, _wire(args[0], out=out))
    if origin is tuple:
        return types.GenericAlias(tuple, tuple(a if a is Ellipsis else _wire(a, out=out) for a in args))
    if origin in _MAPPINGS and len(args) == 2:
        return types.GenericAlias(dict, (args[0], _wire(args[1], out=out)))
    return tp


def _describable(tp: Any) -> Any:
    """``tp`` if pydantic can validate and describe it in JSON schema, else ``Any``."""
    if tp is Any:
        return Any
    try:
        TypeAdapter(tp).json_schema()
    except Exception:
        return Any
    return tp


# =============================================================================== decoding
def decode_input(value: Any) -> Any:
    """A validated request value as the runnable expects it: message dicts become messages,
    generated prompt objects plain dicts (only the keys the client sent, plus allowed extras).
    The client's own pydantic models, dataclasses and scalars are left as validated."""
    if isinstance(value, ChatMessage):
        return value.to_message()
    if isinstance(value, WireModel):
        given = value.model_fields_set
        out = {
            (field.alias or name): decode_input(getattr(value, name))
            for name, field in type(value).model_fields.items()
            if name in given
        }
        for key, extra in (value.model_extra or {}).items():
            out[key] = decode_input(extra)
        return out
    if isinstance(value, list):
        return [decode_input(v) for v in value]
    if isinstance(value, tuple):
        return tuple(decode_input(v) for v in value)
    if isinstance(value, dict):
        return {k: decode_input(v) for k, v in value.items()}
    return value
