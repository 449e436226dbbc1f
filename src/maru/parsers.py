"""Output parsers: the last step of a chain, turning a model's message into text, JSON or a model.

- :class:`StrOutputParser`: the message's text; on a stream, each chunk's text as it arrives.
- :class:`JsonOutputParser`: JSON found in the text (bare, in a ```json fence, or inside prose); on
  a stream, progressively more complete snapshots of the value, parsed from the partial text.
- :class:`PydanticOutputParser`: JSON validated into a pydantic model (or any type pydantic can
  validate, such as ``list[Item]``).

A parser takes a message (``AIMessage``, ``AIMessageChunk``) or a string. Output that cannot be
parsed raises :class:`~maru.errors.OutputParserError`, which carries the raw text, so that
``with_retry`` / ``with_fallbacks`` can act on it.

The partial-JSON parser, :func:`parse_partial_json`, is a small recursive-descent parser that
returns the value a truncated JSON text has so far: open strings, arrays and objects are closed,
a key without its value is left out, a number cut short is read as far as it goes and a cut
``true`` / ``false`` / ``null`` is completed. Streams use an incremental form of it
(``_JsonStream``) that parses each complete value once.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from json.decoder import scanstring  # type: ignore[attr-defined]  # real in CPython, absent from typeshed
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .core.chunks import SnapshotDict, SnapshotList, as_snapshot
from .core.config import RunConfig
from .core.runnable import Runnable
from .errors import OutputParserError
from .messages import BaseMessage

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "BaseOutputParser",
    "JsonOutputParser",
    "PydanticOutputParser",
    "StrOutputParser",
    "parse_json_text",
    "parse_partial_json",
]

T = TypeVar("T")


def _text_of(value: Any, parser: str) -> str:
    if type(value) is str:
        return value
    if isinstance(value, BaseMessage):
        content = value.content
        return content if type(content) is str else value.text
    if isinstance(value, str):
        return str(value)
    if type(foreign := getattr(value, "content", None)) is str:  # a LangChain message
        return foreign
    raise TypeError(
        f"{parser} takes a message or a string, got {type(value).__name__}: {value!r:.80}; "
        "put it after a chat model (or a step that returns text)"
    )


class BaseOutputParser(Runnable[Any, T], Generic[T], ABC):
    """A parser: ``parse(text)``; as a step it takes a message or a string."""

    kind: ClassVar[str] = "parser"

    @abstractmethod
    def parse(self, text: str) -> T: ...

    def get_format_instructions(self) -> str:
        """Text to put in the prompt so the model answers in the shape this parser reads."""
        return ""

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> T:
        return self.parse(_text_of(input, type(self).__name__))


# --------------------------------------------------------------------------- str
class StrOutputParser(BaseOutputParser[str]):
    """The text of a message. On a stream it passes each chunk's text on as it arrives (empty
    chunks, such as a final usage-only chunk, are skipped)."""

    def parse(self, text: str) -> str:
        return text

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> str:
        if type(input) is str:
            return input
        return _text_of(input, "StrOutputParser")

    def _transform(
        self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[str]:
        empty = True
        for chunk in input:
            text = _text_of(chunk, "StrOutputParser")
            if text:
                empty = False
                yield text
        if empty:
            yield ""

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        empty = True
        async for chunk in input:
            text = _text_of(chunk, "StrOutputParser")
            if text:
                empty = False
                yield text
        if empty:
            yield ""


# --------------------------------------------------------------------------- partial JSON
class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


_NOTHING: Any = _Nothing()


class _Invalid(ValueError):
    """The text is not the beginning of a JSON document."""


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]*")
# what a number cut short by the end of the text may look like
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:(?<=[0-9])[eE][-+]?[0-9]*)?)?")
# a string's body made of plain characters and complete, valid escapes
_STRING_BODY = re.compile(r'[^"\\]*(?:(?:\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})[^"\\]*)*')
_ESCAPE_START = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?")
_LITERALS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}


def _skip_ws(s: str, i: int) -> int:
    if i < len(s) and s[i] in " \t\n\r":
        return _WS.match(s, i).end()  # type: ignore[union-attr]
    return i


def _parse_value(s: str, i: int, n: int) -> tuple[Any, int, bool]:
    """Parse the value starting at ``s[i]`` (no leading whitespace). Returns ``(value, end,
    complete)``; ``complete`` is False when the text ended inside the value, and then ``value`` is
    what it holds so far (``_NOTHING`` when that is nothing usable, like a lone ``-``)."""
    c = s[i]
    if c == "{":
        return _parse_object(s, i + 1, n)
    if c == "[":
        return _parse_array(s, i + 1, n)
    if c == '"':
        return _parse_string(s, i, n)
    if c in "-0123456789":
        return _parse_number(s, i, n)
    literal = _LITERALS.get(c)
    if literal is not None:
        word, value = literal
        end = i + len(word)
        if s.startswith(word, i):
            return value, end, True
        if n < end and word.startswith(s[i:n]):
            return value, n, False
    raise _Invalid(f"unexpected {s[i : i + 10]!r} at position {i}")


def _parse_object(s: str, i: int, n: int) -> tuple[Any, int, bool]:
    obj: dict[str, Any] = {}
    i = _skip_ws(s, i)
    if i >= n:
        return obj, n, False
    if s[i] == "}":
        return obj, i + 1, True
    while True:
        if s[i] != '"':
            raise _Invalid(f"expected a key string at position {i}, found {s[i]!r}")
        key, i, complete = _parse_string(s, i, n)
        if not complete:
            return obj, n, False  # a key without its value is left out
        i = _skip_ws(s, i)
        if i >= n:
            return obj, n, False
        if s[i] != ":":
            raise _Invalid(f"expected ':' at position {i}, found {s[i]!r}")
        i = _skip_ws(s, i + 1)
        if i >= n:
            return obj, n, False
        value, i, complete = _parse_value(s, i, n)
        if value is not _NOTHING:
            obj[key] = value
        if not complete:
            return obj, n, False
        i = _skip_ws(s, i)
        if i >= n:
            return obj, n, False
        c = s[i]
        if c == "}":
            return obj, i + 1, True
        if c != ",":
            raise _Invalid(f"expected ',' or '}}' at position {i}, found {c!r}")
        i = _skip_ws(s, i + 1)
        if i >= n:
            return obj, n, False


def _parse_array(s: str, i: int, n: int) -> tuple[Any, int, bool]:
    items: list[Any] = []
    i = _skip_ws(s, i)
    if i >= n:
        return items, n, False
    if s[i] == "]":
        return items, i + 1, True
    while True:
        value, i, complete = _parse_value(s, i, n)
        if value is not _NOTHING:
            items.append(value)
        if not complete:
            return items, n, False
        i = _skip_ws(s, i)
        if i >= n:
            return items, n, False
        c = s[i]
        if c == "]":
            return items, i + 1, True
        if c != ",":
            raise _Invalid(f"expected ',' or ']' at position {i}, found {c!r}")
        i = _skip_ws(s, i + 1)
        if i >= n:
            return items, n, False


def _parse_string(s: str, i: int, n: int) -> tuple[Any, int, bool]:
    try:
        value, end = scanstring(s, i + 1, False)
        return value, end, True
    except ValueError:
        pass
    body_end = _STRING_BODY.match(s, i + 1).end()  # type: ignore[union-attr]
    if body_end < n:
        # only an escape cut short by the end of the text may follow the body
        escape = _ESCAPE_START.match(s, body_end)
        if escape is None or escape.end() != n:
            raise _Invalid(f"invalid string escape at position {body_end}")
    content = s[i + 1 : body_end]
    if _ends_with_high_surrogate(content):
        content = content[:-6]  # its low half has not arrived yet
    return scanstring(content + '"', 0, False)[0], n, False


def _ends_with_high_surrogate(content: str) -> bool:
    if len(content) < 6 or content[-6:-4] != "\\u" or content[-4] not in "dD":
        return False
    if content[-3] not in "89abAB":
        return False
    slashes = len(content) - 5 - len(content[:-5].rstrip("\\"))
    return slashes % 2 == 1


def _parse_number(s: str, i: int, n: int) -> tuple[Any, int, bool]:
    full = _NUMBER.match(s, i)
    reach = _NUMBER_CHARS.match(s, i).end()  # type: ignore[union-attr]
    if reach == n:  # the number runs to the end of the text: it may be cut short
        if _NUMBER_PREFIX.fullmatch(s, i, n) is None:
            raise _Invalid(f"invalid number {s[i:n]!r} at position {i}")
        return (_NOTHING if full is None else _number(full.group())), n, False
    if full is None or full.end() != reach:
        raise _Invalid(f"invalid number {s[i:reach]!r} at position {i}")
    return _number(full.group()), full.end(), True


def _number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def parse_partial_json(text: str) -> Any:
    """Parse JSON text that may be cut off at any point, returning the value it holds so far.

    ``'{"name": "Ki'`` gives ``{"name": "Ki"}``, ``'[1, 2, tr'`` gives ``[1, 2, True]`` and
    ``'{"a": '`` gives ``{}``. Complete JSON gives what :func:`json.loads` would. Raises
    ``ValueError`` when the text is not the beginning of a JSON document (or holds no value yet,
    like ``""`` or ``"-"``)."""
    n = len(text)
    i = _skip_ws(text, 0)
    if i >= n:
        raise ValueError("no JSON value: the text is empty")
    value, end, complete = _parse_value(text, i, n)
    if value is _NOTHING:
        raise ValueError(f"no JSON value yet in {text!r:.40}")
    if complete:
        end = _skip_ws(text, end)
        if end < n:
            raise _Invalid(
                f"extra text after the JSON value at position {end}: {text[end : end + 20]!r}"
            )
    return value


# --------------------------------------------------------------------------- JSON text
_DECODER = json.JSONDecoder(strict=False)
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_JSON_START = re.compile(r"[\[{]")


def parse_json_text(text: str) -> Any:
    """The JSON value in a model's answer: the whole text, the first fenced code block, or the
    first JSON object or array inside surrounding prose. Raises :class:`OutputParserError` with the
    raw text when there is none. Truncated JSON is an error here (streams show partial values)."""
    stripped = text.strip()
    if not stripped:
        raise OutputParserError("the model output is empty; expected JSON", raw=text)
    try:
        return _DECODER.decode(stripped)
    except ValueError as exc:
        error: ValueError = exc
    body = stripped
    fence = _FENCE.search(stripped)
    if fence is not None:
        body = fence.group(1).strip()
        try:
            return _DECODER.decode(body)
        except ValueError as exc:
            error = exc
    for match in _JSON_START.finditer(body):
        try:
            return _DECODER.raw_decode(body, match.start())[0]
        except ValueError:
            continue
    raise OutputParserError(f"the model output holds no valid JSON ({error})", raw=text)


# what an open container expects next
_FIRST_VALUE = 0  # just after '[': a value or ']'
_FIRST_KEY = 1  # just after '{': a key or '}'
_KEY = 2  # after ',' in an object
_COLON = 3
_VALUE = 4  # after ':' or after ',' in an array
_NEXT = 5  # after a value: ',' or the closing bracket


class _Frame:
    """An open object or array of an incremental parse."""

    __slots__ = ("container", "expect", "is_object", "key")

    def __init__(self, container: Any, is_object: bool) -> None:
        self.container = container
        self.is_object = is_object
        self.key: str | None = None
        self.expect = _FIRST_KEY if is_object else _FIRST_VALUE


class _JsonStream:
    """Incremental parse of a JSON object or array arriving in pieces, in time linear in its length.

    Complete values are parsed once and kept in open containers (``stack``); each new piece resumes
    where the last complete value ended. A snapshot copies only the chain of open containers (the
    complete values inside are shared between snapshots, and never change) and adds the value cut
    short at the end of the text, if any. The result equals ``parse_partial_json`` of the text so
    far, which the tests check prefix by prefix.
    """

    __slots__ = ("done", "last", "pos", "root", "search_from", "stack", "start", "text")

    def __init__(self) -> None:
        self.text = ""
        self.last: Any = _NOTHING
        self.search_from = 0
        self._reset(-1)

    def _reset(self, start: int) -> None:
        self.start = start  # where the value being parsed starts; -1 while not found
        self.pos = start + 1
        self.done = False  # the value is complete: what follows is prose
        if start < 0:
            self.root: Any = None
            self.stack: list[_Frame] = []
        else:
            is_object = self.text[start] == "{"
            self.root = {} if is_object else []
            self.stack = [_Frame(self.root, is_object)]

    def push(self, piece: str) -> Any:
        """Add text; return the new snapshot, or ``_NOTHING`` when the value did not change."""
        self.text += piece
        if self.done:
            return _NOTHING
        text = self.text
        while True:
            if self.start < 0:
                fence = text.find("```", self.search_from)
                at = _JSON_START.search(text, fence + 3 if fence != -1 else self.search_from)
                if at is None:
                    return _NOTHING
                self._reset(at.start())
            try:
                value = self._advance(text)
            except _Invalid:  # not JSON after all (a brace in prose): look further on
                self.search_from = self.start + 1
                self._reset(-1)
                continue
            if value == self.last:
                return _NOTHING
            self.last = value
            return value

    def _advance(self, s: str) -> Any:
        """Parse complete values from ``pos`` on; return the snapshot of the text so far."""
        n = len(s)
        i = self.pos
        stack = self.stack
        while stack:
            i = _skip_ws(s, i)
            if i >= n:
                break
            frame = stack[-1]
            expect = frame.expect
            c = s[i]
            if (
                expect == _NEXT
                or (expect == _FIRST_KEY and c == "}")
                or (expect == _FIRST_VALUE and c == "]")
            ):
                if c == ("}" if frame.is_object else "]"):
                    stack.pop()
                    i += 1
                    continue
                if c != "," or expect != _NEXT:
                    raise _Invalid(f"unexpected {c!r} at position {i}")
                frame.expect = _KEY if frame.is_object else _VALUE
                i += 1
            elif expect in (_FIRST_KEY, _KEY):
                if c != '"':
                    raise _Invalid(f"expected a key string at position {i}, found {c!r}")
                key, end, complete = _parse_string(s, i, n)
                if not complete:
                    break
                frame.key = key
                frame.expect = _COLON
                i = end
            elif expect == _COLON:
                if c != ":":
                    raise _Invalid(f"expected ':' at position {i}, found {c!r}")
                frame.expect = _VALUE
                i += 1
            elif c == "{" or c == "[":
                child: Any = {} if c == "{" else []
                self._attach(frame, child)
                stack.append(_Frame(child, c == "{"))
                i += 1
            else:
                value, end, complete = _parse_value(s, i, n)
                if not complete:
                    break  # cut short by the end of the text: parsed again with the next piece
                self._attach(frame, value)
                i = end
        self.pos = i
        if not stack:
            self.done = True
            return as_snapshot(self.root)
        return self._snapshot(s, i, n)

    @staticmethod
    def _attach(frame: _Frame, value: Any) -> None:
        if frame.is_object:
            frame.container[frame.key] = value
        else:
            frame.container.append(value)
        frame.expect = _NEXT

    def _snapshot(self, s: str, i: int, n: int) -> Any:
        stack = self.stack
        copies: list[Any] = [dict(f.container) if f.is_object else list(f.container) for f in stack[1:]]
        root = stack[0]  # the top copy is marked: downstream gathering keeps, not adds, snapshots
        copies.insert(0, SnapshotDict(root.container) if root.is_object else SnapshotList(root.container))
        for k in range(len(stack) - 1):
            parent, copy = stack[k], copies[k]
            if parent.is_object:
                copy[parent.key] = copies[k + 1]
            else:
                copy[-1] = copies[k + 1]
        top = stack[-1]
        if i < n and top.expect in (_FIRST_VALUE, _VALUE) and s[i] not in "{[]":
            tail = _parse_value(s, i, n)[0]
            if tail is not _NOTHING:
                if top.is_object:
                    copies[-1][top.key] = tail
                else:
                    copies[-1].append(tail)
        return copies[0]

    def finish(self) -> Any:
        """The final value, strictly parsed; ``_NOTHING`` if it equals the last snapshot."""
        value = parse_json_text(self.text)
        if self.last is not _NOTHING and value == self.last:
            return _NOTHING
        return as_snapshot(value)


def _format_instructions(schema: dict[str, Any] | None) -> str:
    if schema is None:
        return "Answer with JSON only: a single JSON value, with no text before or after it."
    return (
        "Answer with JSON only: a single JSON object that conforms to the JSON schema below, with "
        "no text before or after it. Give the data itself, not the schema.\n\n"
        f"```json\n{json.dumps(schema, ensure_ascii=False)}\n```"
    )


def _json_schema(tp: Any) -> dict[str, Any]:
    from pydantic import BaseModel, TypeAdapter

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.model_json_schema()
    return TypeAdapter(tp).json_schema()


class JsonOutputParser(BaseOutputParser[Any]):
    """Parses the JSON in a model's answer (see :func:`parse_json_text`).

    On a stream it yields snapshots: each time more text arrives and the value parsed so far
    changed, the whole value so far (``{"a": "He"}``, then ``{"a": "Hello"}`` …), and at the end
    the complete value, strictly parsed (an :class:`OutputParserError` if the final text is not
    valid JSON). Streaming looks for an object or array (also inside a fence or after prose); a
    bare scalar answer is yielded once, at the end. The stream is parsed incrementally, in time
    linear in its length; the parts of a snapshot that are complete are shared with the snapshots
    after it, so copy a snapshot before changing it in place.

    ``pydantic_object`` only shapes :meth:`get_format_instructions`; the output is plain JSON data
    (dicts, lists …). Use :class:`PydanticOutputParser` to validate into the model.
    """

    def __init__(self, pydantic_object: Any = None, *, name: str | None = None) -> None:
        self.pydantic_object = pydantic_object
        if name is not None:
            self._name = name

    def parse(self, text: str) -> Any:
        return parse_json_text(text)

    def get_format_instructions(self) -> str:
        if self.pydantic_object is None:
            return _format_instructions(None)
        return _format_instructions(_json_schema(self.pydantic_object))

    def _transform(
        self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        state = _JsonStream()
        name = type(self).__name__
        for chunk in input:
            piece = _text_of(chunk, name)
            if piece:
                value = state.push(piece)
                if value is not _NOTHING:
                    yield value
        final = state.finish()
        if final is not _NOTHING:
            yield final

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        state = _JsonStream()
        name = type(self).__name__
        async for chunk in input:
            piece = _text_of(chunk, name)
            if piece:
                value = state.push(piece)
                if value is not _NOTHING:
                    yield value
        final = state.finish()
        if final is not _NOTHING:
            yield final

    def __repr__(self) -> str:
        schema = getattr(self.pydantic_object, "__name__", None)
        return f"JsonOutputParser({schema or ''})"


# --------------------------------------------------------------------------- pydantic
def _validation_lines(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        lines.append(f"  - {where}: {err.get('msg', '')}")
    return "\n".join(lines)


class PydanticOutputParser(BaseOutputParser[Any]):
    """Parses the JSON in a model's answer and validates it into ``pydantic_object``: a pydantic
    model, or any type pydantic validates (``list[Item]``, a ``TypedDict`` …).

    A stream yields one value, the validated result, once the text is complete: a model built
    from a half-written answer would carry truncated fields as if they were final (use
    :class:`JsonOutputParser` for progressive snapshots)."""

    def __init__(self, pydantic_object: Any, *, name: str | None = None) -> None:
        from pydantic import BaseModel, TypeAdapter

        self.pydantic_object = pydantic_object
        self._validate: Callable[[Any], Any]
        if isinstance(pydantic_object, type) and issubclass(pydantic_object, BaseModel):
            self._validate = pydantic_object.model_validate
        else:
            try:
                self._validate = TypeAdapter(pydantic_object).validate_python
            except Exception as exc:
                raise TypeError(
                    f"PydanticOutputParser needs a pydantic model or a type pydantic can "
                    f"validate, got {pydantic_object!r}: {exc}"
                ) from exc
        if name is not None:
            self._name = name

    @property
    def _type_name(self) -> str:
        return getattr(self.pydantic_object, "__name__", None) or repr(self.pydantic_object)

    def parse(self, text: str) -> Any:
        from pydantic import ValidationError

        data = parse_json_text(text)
        try:
            return self._validate(data)
        except ValidationError as exc:
            raise OutputParserError(
                f"the model output is JSON but does not match {self._type_name} "
                f"({exc.error_count()} error(s)):\n{_validation_lines(exc)}",
                raw=text,
            ) from exc

    def get_format_instructions(self) -> str:
        return _format_instructions(_json_schema(self.pydantic_object))

    def _transform(
        self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        name = type(self).__name__
        yield self.parse("".join(_text_of(chunk, name) for chunk in input))

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        name = type(self).__name__
        yield self.parse("".join([_text_of(chunk, name) async for chunk in input]))

    def __repr__(self) -> str:
        return f"PydanticOutputParser({self._type_name})"
