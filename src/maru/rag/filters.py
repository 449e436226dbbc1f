"""Typed metadata filters: an expression tree, never a string that gets evaluated.

    from maru.rag import F
    flt = (F.eq("lang", "ko") & F.gte("year", 2020)) | ~F.in_("source", ["a.md", "b.md"])

Each store compiles the tree to its own dialect (a Python predicate for the in-memory store, SQL for
SQLite/LanceDB, a boolean expression for Milvus) with :func:`walk`-style ``match`` statements on the
node classes below. :func:`validate` checks a tree against the field types a store knows and raises
:class:`~maru.errors.FilterError` naming the unknown field or the mistyped value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import FilterError

__all__ = [
    "And",
    "Compare",
    "F",
    "Filter",
    "Not",
    "Or",
    "fields_of",
    "matches",
    "sql_literal",
    "type_name",
    "validate",
]

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains"]
Scalar = str | int | float | bool

_ORDERED_OPS = frozenset({"gt", "gte", "lt", "lte"})


class Filter:
    """A node of the filter tree. Combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Filter) -> Filter:
        _check_node(other, "&")
        return And((*_flatten(self, And), *_flatten(other, And)))

    def __or__(self, other: Filter) -> Filter:
        _check_node(other, "|")
        return Or((*_flatten(self, Or), *_flatten(other, Or)))

    def __invert__(self) -> Filter:
        return self.child if isinstance(self, Not) else Not(self)

    def __bool__(self) -> bool:
        raise TypeError("a filter has no truth value; combine filters with & | ~, not and/or/not")


@dataclass(frozen=True, slots=True)
class Compare(Filter):
    """``field op value``. For ``in``/``nin`` the value is a tuple; for ``contains`` the field holds
    a list (or a string) and the value is one element (or a substring)."""

    field: str
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class And(Filter):
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or(Filter):
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not(Filter):
    child: Filter


def _check_node(other: Any, symbol: str) -> None:
    if not isinstance(other, Filter):
        raise TypeError(f"cannot combine a filter with {type(other).__name__} using {symbol}; build both with F")


def _flatten(node: Filter, kind: type[And] | type[Or]) -> tuple[Filter, ...]:
    return node.children if isinstance(node, kind) else (node,)


def _field(name: Any) -> str:
    if not isinstance(name, str) or not name or not name.replace("_", "a").replace(".", "a").isalnum():
        raise FilterError(
            f"filter field {name!r} is not a valid name: use letters, digits, '_' and '.' only"
        )
    return name


def _scalar(value: Any, op: str) -> Scalar:
    if value is None or not isinstance(value, str | int | float | bool):
        raise FilterError(
            f"F.{op} takes a str, int, float or bool value, got {type(value).__name__} {value!r}"
        )
    return value


class F:
    """Builders of filter leaves: ``F.eq(field, value)`` and friends."""

    @staticmethod
    def eq(field: str, value: Scalar) -> Compare:
        return Compare(_field(field), "eq", _scalar(value, "eq"))

    @staticmethod
    def ne(field: str, value: Scalar) -> Compare:
        return Compare(_field(field), "ne", _scalar(value, "ne"))

    @staticmethod
    def gt(field: str, value: int | float | str) -> Compare:
        return Compare(_field(field), "gt", _scalar(value, "gt"))

    @staticmethod
    def gte(field: str, value: int | float | str) -> Compare:
        return Compare(_field(field), "gte", _scalar(value, "gte"))

    @staticmethod
    def lt(field: str, value: int | float | str) -> Compare:
        return Compare(_field(field), "lt", _scalar(value, "lt"))

    @staticmethod
    def lte(field: str, value: int | float | str) -> Compare:
        return Compare(_field(field), "lte", _scalar(value, "lte"))

    @staticmethod
    def in_(field: str, values: Iterable[Scalar]) -> Compare:
        return Compare(_field(field), "in", _values(values, "in_"))

    @staticmethod
    def nin(field: str, values: Iterable[Scalar]) -> Compare:
        return Compare(_field(field), "nin", _values(values, "nin"))

    @staticmethod
    def contains(field: str, value: Scalar) -> Compare:
        return Compare(_field(field), "contains", _scalar(value, "contains"))


def _values(values: Iterable[Scalar], op: str) -> tuple[Scalar, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise FilterError(f"F.{op} takes a list of values, got {type(values).__name__} {values!r}")
    out = tuple(_scalar(v, op) for v in values)
    if not out:
        raise FilterError(f"F.{op} needs at least one value")
    return out


# ----------------------------------------------------------------------------- inspection
def leaves(node: Filter) -> Iterator[Compare]:
    match node:
        case Compare():
            yield node
        case And(children) | Or(children):
            for child in children:
                yield from leaves(child)
        case Not(child):
            yield from leaves(child)
        case _:
            raise FilterError(f"not a filter node: {node!r}")


def fields_of(node: Filter) -> set[str]:
    return {leaf.field for leaf in leaves(node)}


def type_name(value: Any) -> str:
    """The filter type of a metadata value: ``bool``, ``int``, ``float``, ``str`` or ``list``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _compatible(field_type: str, value: Any, op: str) -> bool:
    vt = type_name(value)
    if op == "contains":
        return field_type in ("list", "str")
    if field_type == "list":
        return False
    if field_type in ("int", "float"):
        return vt in ("int", "float")
    return vt == field_type


def validate(node: Filter, field_types: Mapping[str, str]) -> None:
    """Check every leaf against ``field_types`` (name → :func:`type_name`). An empty mapping means
    the store has no documents yet, and any filter is accepted."""
    if not field_types:
        return
    for leaf in leaves(node):
        ftype = field_types.get(leaf.field)
        if ftype is None:
            known = ", ".join(sorted(field_types)) or "none"
            raise FilterError(f"unknown filter field {leaf.field!r}; the store's metadata fields are: {known}")
        values = leaf.value if leaf.op in ("in", "nin") else (leaf.value,)
        for value in values:
            if not _compatible(ftype, value, leaf.op):
                raise FilterError(
                    f"filter on {leaf.field!r} ({ftype}) compares it with {type_name(value)} {value!r}; "
                    f"pass a {ftype} value" if leaf.op != "contains" else
                    f"F.contains needs a list or str field, but {leaf.field!r} is {ftype}"
                )
        if leaf.op in _ORDERED_OPS and ftype == "bool":
            raise FilterError(f"F.{leaf.op} cannot order the bool field {leaf.field!r}; use F.eq")


# ----------------------------------------------------------------------------- evaluation
def matches(node: Filter | None, metadata: Mapping[str, Any]) -> bool:
    """Evaluate the tree on one document's metadata (the in-memory store's dialect).
    A missing field makes a comparison false (and its negation true)."""
    if node is None:
        return True
    match node:
        case Compare(field, op, value):
            if field not in metadata:
                return op in ("ne", "nin")
            return _compare(op, metadata[field], value)
        case And(children):
            return all(matches(c, metadata) for c in children)
        case Or(children):
            return any(matches(c, metadata) for c in children)
        case Not(child):
            return not matches(child, metadata)
    raise FilterError(f"not a filter node: {node!r}")


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda got, value: got in value,
    "nin": lambda got, value: got not in value,
    "contains": lambda got, value: value in got if isinstance(got, list | tuple | str) else False,
}


def _compare(op: str, got: Any, value: Any) -> bool:
    """One comparison; values that cannot be compared (``"a" < 1``) do not match."""
    compare = _COMPARISONS.get(op)
    if compare is None:
        raise FilterError(f"unknown filter operator {op!r}")
    try:
        return bool(compare(got, value))
    except TypeError:
        return False


def sql_literal(value: Scalar) -> str:
    """A value as a SQL literal, quotes doubled — for stores whose dialect is SQL text."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
