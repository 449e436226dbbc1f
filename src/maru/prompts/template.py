"""The f-string template compiler: parse a template once, render it many times.

A template is text with ``{name}`` fields; ``{{`` and ``}}`` are literal braces. A field may carry a
conversion and a format spec, as in Python (``{name!r}``, ``{price:.2f}``), but never attribute or
index access (``{user.name}``, ``{items[0]}``): templates often come from configuration files or
users, and ``str.format`` would evaluate those lookups on whatever objects it is given.

Compiling parses the text into literal and field parts and builds, once, the cheapest renderer
for their shape: a ``%``-format string over the field values, so that rendering is one C-level
operation with no parsing or regex work per call. ``{name}`` renders ``str(value)``;
``{name!r}`` ``repr(value)``; ``{name:spec}`` ``format(value, spec)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

from ..errors import PromptError

__all__ = ["Field", "Template", "compile_template"]


class Field:
    """One ``{name!conversion:spec}`` field of a template."""

    __slots__ = ("conversion", "name", "spec")

    def __init__(self, name: str, conversion: str | None = None, spec: str = "") -> None:
        self.name = name
        self.conversion = conversion
        self.spec = spec

    @property
    def simple(self) -> bool:
        return self.conversion is None and not self.spec

    def source(self) -> str:
        text = self.name
        if self.conversion:
            text += "!" + self.conversion
        if self.spec:
            text += ":" + self.spec
        return "{" + text + "}"

    def apply(self, value: Any) -> str:
        conversion = self.conversion
        if conversion == "r":
            value = repr(value)
        elif conversion == "a":
            value = ascii(value)
        elif conversion == "s":
            value = str(value)
        return format(value, self.spec) if self.spec else str(value)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Field)
            and self.name == other.name
            and self.conversion == other.conversion
            and self.spec == other.spec
        )

    def __hash__(self) -> int:
        return hash((self.name, self.conversion, self.spec))

    def __repr__(self) -> str:
        return f"Field({self.source()})"


Part = str | Field


class Template:
    """A compiled f-string template: ``parts`` (literal strings and :class:`Field` s), the distinct
    ``variables`` in order of first appearance, and ``render(values)``."""

    __slots__ = ("parts", "render", "source", "variables")

    parts: tuple[Part, ...]
    variables: tuple[str, ...]
    source: str
    render: Callable[[Mapping[str, Any]], str]
    """``render(values)``: the text with each field replaced by its value. A missing value raises
    ``KeyError`` (the prompt classes turn it into a :class:`~maru.errors.PromptError`)."""

    def __init__(self, parts: Iterable[Part]) -> None:
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str):
                if not part:
                    continue
                if merged and isinstance(merged[-1], str):
                    merged[-1] += part
                    continue
            elif not isinstance(part, Field):
                raise TypeError(f"a template part is a str or a Field, got {type(part).__name__}")
            merged.append(part)
        self.parts = tuple(merged)
        fields = [p for p in self.parts if isinstance(p, Field)]
        self.variables = tuple(dict.fromkeys(f.name for f in fields))
        self.source = "".join(
            p.replace("{", "{{").replace("}", "}}") if isinstance(p, str) else p.source()
            for p in self.parts
        )
        self.render = _build_renderer(self.parts, fields)

    @property
    def is_constant(self) -> bool:
        return not self.variables

    def __add__(self, other: Template | str) -> Template:
        if isinstance(other, str):
            other = compile_template(other)
        if not isinstance(other, Template):
            return NotImplemented
        return Template(self.parts + other.parts)

    def __radd__(self, other: str) -> Template:
        if isinstance(other, str):
            return Template(compile_template(other).parts + self.parts)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _build_renderer(
    parts: tuple[Part, ...], fields: list[Field]
) -> Callable[[Mapping[str, Any]], str]:
    if not fields:
        constant = "".join(parts)  # type: ignore[arg-type]
        return lambda values: constant
    pattern = "".join(p.replace("%", "%%") if isinstance(p, str) else "%s" for p in parts)
    if all(f.simple for f in fields):
        if len(fields) == 1:
            name = fields[0].name
            if pattern == "%s":
                return lambda values: str(values[name])
            return lambda values: pattern % (values[name],)
        getter = itemgetter(*(f.name for f in fields))
        return lambda values: pattern % getter(values)
    fields_t = tuple(fields)
    return lambda values: pattern % tuple([f.apply(values[f.name]) for f in fields_t])


# --------------------------------------------------------------------------- parsing
def compile_template(text: str) -> Template:
    """Parse an f-string template. Raises :class:`~maru.errors.PromptError` for unbalanced braces,
    empty or positional fields, attribute/index access and names that are not identifiers."""
    if not isinstance(text, str):
        raise TypeError(f"a template is a str, got {type(text).__name__}: {text!r:.80}")
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    find = text.find
    while i < n:
        open_at = find("{", i)
        close_at = find("}", i)
        if open_at == -1 and close_at == -1:
            literal.append(text[i:])
            break
        if close_at != -1 and (open_at == -1 or close_at < open_at):
            # a '}' before any '{': only valid as '}}'
            literal.append(text[i:close_at])
            if text.startswith("}}", close_at):
                literal.append("}")
                i = close_at + 2
                continue
            raise _malformed(
                text, close_at, "a single '}' closes no field; write '}}' for a literal brace"
            )
        literal.append(text[i:open_at])
        if text.startswith("{{", open_at):
            literal.append("{")
            i = open_at + 2
            continue
        end = find("}", open_at + 1)
        if end == -1:
            raise _malformed(
                text, open_at, "this '{' is never closed; write '{{' for a literal brace"
            )
        nested = find("{", open_at + 1, end)
        if nested != -1:
            raise _malformed(
                text,
                nested,
                "a '{' inside a field: fields cannot be nested; write '{{' for a literal brace",
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_parse_field(text, open_at, text[open_at + 1 : end]))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(parts)


def _parse_field(text: str, at: int, body: str) -> Field:
    name, conversion, spec = body, None, ""
    cut = min((k for k in (body.find("!"), body.find(":")) if k != -1), default=-1)
    if cut != -1:
        name, rest = body[:cut], body[cut:]
        if rest.startswith("!"):
            conversion, _, spec = rest[1:].partition(":")
            if conversion not in ("r", "s", "a"):
                raise _malformed(
                    text, at, f"field {{{body}}} has conversion !{conversion}; use !r, !s or !a"
                )
        else:
            spec = rest[1:]
    if not name.strip():
        raise _malformed(text, at, "an empty field {}; name the variable, e.g. {question}")
    if "." in name or "[" in name:
        raise _malformed(
            text,
            at,
            f"field {{{body}}} uses attribute or index access, which templates never evaluate; "
            "pass the value you need as its own variable",
        )
    if name.isdigit():
        raise _malformed(
            text, at, f"positional field {{{body}}}; templates take named variables, e.g. {{text}}"
        )
    if not name.isidentifier():
        raise _malformed(
            text,
            at,
            f"{{{body}}} is not a variable name (variables are identifiers such as {{question}}); "
            "for literal braces, e.g. JSON in a prompt, double them: {{ and }}",
        )
    return Field(name, conversion, spec)


def _malformed(text: str, at: int, why: str) -> PromptError:
    start = max(0, at - 20)
    snippet = text[start : at + 21].replace("\n", "\\n")
    pointer = " " * (len(text[start:at].replace("\n", "\\n")) + 4) + "^"
    return PromptError(f"malformed template at position {at}: {why}\n    {snippet}\n{pointer}")
