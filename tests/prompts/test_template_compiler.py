"""The f-string compiler: parts, escapes, specs, and the templates it refuses at build time."""

from __future__ import annotations

import pytest

from maru.errors import PromptError
from maru.prompts import Field, Template, compile_template


def test_parts_and_variables_in_order_of_first_appearance():
    t = compile_template("Hi {name}, {greeting} {name}!")
    assert t.parts == ("Hi ", Field("name"), ", ", Field("greeting"), " ", Field("name"), "!")
    assert t.variables == ("name", "greeting")
    assert t.render({"name": "Ann", "greeting": "hello"}) == "Hi Ann, hello Ann!"


def test_escaped_braces_are_literal_and_survive_in_source():
    t = compile_template('JSON: {{"a": {value}}} and }}{{')
    assert t.variables == ("value",)
    assert t.render({"value": 1}) == 'JSON: {"a": 1} and }{'
    assert compile_template(t.source) == t


def test_percent_signs_in_literals_are_not_format_directives():
    t = compile_template("100% sure, %s %d {x} 50%")
    assert t.render({"x": "yes"}) == "100% sure, %s %d yes 50%"


def test_constant_template_and_single_field_shapes():
    assert compile_template("no vars here").render({}) == "no vars here"
    assert compile_template("").render({}) == ""
    assert compile_template("{x}").render({"x": 3}) == "3"
    assert compile_template("<{x}>").render({"x": (1, 2)}) == "<(1, 2)>"  # a tuple is one value


def test_values_render_with_str():
    t = compile_template("{a} {b} {c}")
    assert t.render({"a": None, "b": 1.5, "c": ["x"]}) == "None 1.5 ['x']"


def test_conversions_and_format_specs():
    t = compile_template("{price:.2f} {name!r} {name!s:>5} {word!a}")
    assert t.variables == ("price", "name", "word")
    assert t.render({"price": 3.14159, "name": "ab", "word": "é"}) == "3.14 'ab'    ab '\\xe9'"
    assert t.source == "{price:.2f} {name!r} {name!s:>5} {word!a}"


def test_unicode_variable_names_and_text():
    t = compile_template("{이름}님, 안녕하세요 {emoji}")
    assert t.variables == ("이름", "emoji")
    assert t.render({"이름": "민수", "emoji": "👋"}) == "민수님, 안녕하세요 👋"


def test_missing_value_raises_key_error_naming_it():
    with pytest.raises(KeyError, match="b"):
        compile_template("{a}{b}").render({"a": 1})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{x.__class__}", "attribute or index access"),
        ("{x.__class__.__mro__}", "attribute or index access"),
        ("{items[0]}", "attribute or index access"),
        ("{d[__builtins__]}", "attribute or index access"),
        ("Hello {name", "never closed"),
        ("Hello name}", "single '}'"),
        ("{a{b}}", "cannot be nested"),
        ("{x:{width}}", "cannot be nested"),
        ("{}", "empty field"),
        ("{ }", "empty field"),
        ("{0}", "positional"),
        ('{"a": 1}', "double them"),
        ("{ name }", "not a variable name"),
        ("{na-me}", "not a variable name"),
        ("{x!z}", "conversion"),
        ("{x!}", "conversion"),
    ],
)
def test_malformed_templates_are_refused_at_build_time(template, message):
    with pytest.raises(PromptError, match=message) as info:
        compile_template(template)
    assert "position" in str(info.value)


def test_error_points_at_the_position():
    with pytest.raises(PromptError) as info:
        compile_template("abc } def")
    text = str(info.value)
    assert "position 4" in text
    snippet, pointer = text.splitlines()[-2:]
    assert snippet.strip() == "abc } def"
    assert pointer.index("^") == snippet.index("}")


def test_no_attribute_lookup_ever_happens():
    class Spy:
        def __getattr__(self, name):  # pragma: no cover - must never run
            raise AssertionError("attribute looked up")

        def __str__(self):
            return "spy"

    assert compile_template("{x}").render({"x": Spy()}) == "spy"


def test_templates_concatenate():
    t = compile_template("a {x}") + " b {y}"
    assert t.parts == ("a ", Field("x"), " b ", Field("y"))
    assert ("pre {z} " + compile_template("{x}")).variables == ("z", "x")
    # adjacent literals merge
    assert (Template(["a", "", "b", Field("x")])).parts == ("ab", Field("x"))


def test_compile_rejects_non_strings():
    with pytest.raises(TypeError):
        compile_template(123)  # type: ignore[arg-type]
