"""Typed filters: building, validation against a store's field types, evaluation."""

from __future__ import annotations

import pytest

from maru.errors import FilterError
from maru.rag.filters import And, Compare, F, Not, Or, fields_of, matches, sql_literal, validate

META = {"lang": "ko", "year": 2021, "score": 0.5, "draft": False, "tags": ["a", "b"], "title": "Seoul guide"}
TYPES = {"lang": "str", "year": "int", "score": "float", "draft": "bool", "tags": "list", "title": "str"}


def test_operators_build_a_tree_and_flatten():
    tree = F.eq("lang", "ko") & F.gt("year", 2020) & F.lt("score", 1)
    assert isinstance(tree, And) and len(tree.children) == 3
    either = F.eq("lang", "ko") | F.eq("lang", "en") | F.eq("lang", "ja")
    assert isinstance(either, Or) and len(either.children) == 3
    assert isinstance(~F.eq("lang", "ko"), Not)
    assert ~~F.eq("lang", "ko") == F.eq("lang", "ko")
    assert fields_of(tree) == {"lang", "year", "score"}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (F.eq("lang", "ko"), True),
        (F.ne("lang", "ko"), False),
        (F.gt("year", 2021), False),
        (F.gte("year", 2021), True),
        (F.lt("score", 0.6), True),
        (F.lte("score", 0.4), False),
        (F.in_("lang", ["en", "ko"]), True),
        (F.nin("lang", ["en", "ko"]), False),
        (F.contains("tags", "b"), True),
        (F.contains("tags", "z"), False),
        (F.contains("title", "Seoul"), True),
        (F.eq("draft", False), True),
        (F.eq("lang", "ko") & F.gt("year", 2021), False),
        (F.eq("lang", "ko") | F.gt("year", 2021), True),
        (~(F.eq("lang", "ko") | F.gt("year", 2021)), False),
        (F.eq("missing", 1), False),
        (F.ne("missing", 1), True),
    ],
)
def test_matches(flt, expected):
    assert matches(flt, META) is expected


def test_validate_names_unknown_field_and_known_ones():
    with pytest.raises(FilterError, match=r"unknown filter field 'yr'.*lang, .*year"):
        validate(F.eq("yr", 2020), TYPES)


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        (F.eq("year", "2020"), "pass a int value"),
        (F.in_("lang", ["ko", 3]), "pass a str value"),
        (F.gt("draft", True), "cannot order the bool field"),
        (F.contains("year", 1), "needs a list or str field"),
        (F.eq("tags", "a"), "pass a list value"),
    ],
)
def test_validate_rejects_wrong_types(flt, message):
    with pytest.raises(FilterError, match=message):
        validate(flt, TYPES)


def test_validate_accepts_int_for_float_and_anything_on_empty_store():
    validate(F.gt("score", 0) & F.lt("year", 2030.5), TYPES)
    validate(F.eq("anything", "x"), {})


@pytest.mark.parametrize(
    "build",
    [
        lambda: F.eq("lang", None),
        lambda: F.eq("lang", {"$ne": 1}),
        lambda: F.in_("lang", "ko"),
        lambda: F.in_("lang", []),
        lambda: F.eq("lang; DROP TABLE x", "ko"),
        lambda: F.eq("", "ko"),
    ],
)
def test_bad_leaves_are_refused_at_build_time(build):
    with pytest.raises(FilterError):
        build()


def test_python_boolean_operators_are_refused():
    with pytest.raises(TypeError, match="use & | ~|combine filters"):
        F.eq("a", 1) and F.eq("b", 2)  # noqa: B015
    with pytest.raises(TypeError, match="build both with F"):
        F.eq("a", 1) & {"b": 2}


def test_sql_literal_doubles_quotes():
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(True) == "TRUE"
    assert sql_literal(3) == "3"
    assert Compare("a", "eq", "x' OR '1'='1").value == "x' OR '1'='1"  # kept as data, never as SQL
