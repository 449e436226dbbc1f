"""Output parsers: str, JSON (with incremental snapshots on streams), pydantic; the partial-JSON parser."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from maru.core import runnable
from maru.errors import OutputParserError
from maru.messages import AIMessage, AIMessageChunk, HumanMessage
from maru.parsers import (
    JsonOutputParser,
    PydanticOutputParser,
    StrOutputParser,
    parse_json_text,
    parse_partial_json,
)
from maru.prompts import ChatPromptTemplate


def stream_of(*pieces):
    return [AIMessageChunk(p) for p in pieces]


async def aiter_of(items):
    for item in items:
        yield item


def collect_async(parser, items):
    async def main():
        return [x async for x in parser.atransform(aiter_of(items))]

    return asyncio.run(main())


def fake_model(*pieces):
    """A streaming model stand-in: ignores its prompt and streams ``pieces`` as chunks."""

    @runnable
    def model(inputs):
        for _ in inputs:
            pass
        for piece in pieces:
            yield AIMessageChunk(piece)

    return model


# ----------------------------------------------------------------------------- str
def test_str_parser_invoke():
    parser = StrOutputParser()
    assert parser.kind == "parser"
    assert parser.invoke(AIMessage("hello")) == "hello"
    assert parser.invoke(AIMessageChunk("chunk")) == "chunk"
    assert parser.invoke("plain") == "plain"
    parts = AIMessage(
        [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]
    )
    assert parser.invoke(parts) == "ab"
    assert parser.parse("x") == "x"
    assert asyncio.run(parser.ainvoke(AIMessage("async"))) == "async"


def test_str_parser_refuses_non_text():
    with pytest.raises(TypeError, match="StrOutputParser takes a message or a string, got dict"):
        StrOutputParser().invoke({"a": 1})


def test_str_parser_streams_chunk_text_in_order():
    parser = StrOutputParser()
    chunks = stream_of("Hel", "", "lo", " world") + [AIMessageChunk("", usage=None)]
    assert list(parser.transform(iter(chunks))) == ["Hel", "lo", " world"]
    assert collect_async(parser, chunks) == ["Hel", "lo", " world"]
    assert list(parser.transform(iter(["a", "b"]))) == ["a", "b"]


def test_str_parser_empty_stream_yields_one_empty_string():
    parser = StrOutputParser()
    assert list(parser.transform(iter(stream_of("", "")))) == [""]
    assert collect_async(parser, []) == [""]


def test_str_parser_streams_through_a_chain():
    chain = ChatPromptTemplate.from_template("{q}") | fake_model("A", "B", "C") | StrOutputParser()
    assert list(chain.stream("q")) == ["A", "B", "C"]
    assert chain.invoke("q") == "ABC"

    async def main():
        return [c async for c in chain.astream("q")], await chain.ainvoke("q")

    chunks, whole = asyncio.run(main())
    assert chunks == ["A", "B", "C"]
    assert whole == "ABC"


# ----------------------------------------------------------------------------- JSON text
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ("42", 42),
        ('"just a string"', "just a string"),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Sure! Here it is:\n```json\n{"a": 1}\n```\nAnything else?', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('```json{"a": 1}```', {"a": 1}),
        ('The result is {"a": {"b": null}} as requested.', {"a": {"b": None}}),
        ('Use {name} as a field; the JSON: {"ok": true}', {"ok": True}),
        ('{"text": "line one\nline two"}', {"text": "line one\nline two"}),  # raw newline
        ('{"k": "한국어 \\u00e9 \\ud83d\\ude00"}', {"k": "한국어 é 😀"}),
    ],
)
def test_json_found_in_the_text(text, expected):
    assert parse_json_text(text) == expected
    assert JsonOutputParser().invoke(AIMessage(text)) == expected


@pytest.mark.parametrize("text", ["", "   ", "no json here", '{"a": ', "```json\n{'a': 1}\n```"])
def test_json_errors_carry_the_raw_text(text):
    with pytest.raises(OutputParserError) as info:
        JsonOutputParser().invoke(text)
    assert info.value.raw == text
    assert "raw model output" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_json_format_instructions():
    class Person(BaseModel):
        name: str
        age: int

    plain = JsonOutputParser().get_format_instructions()
    assert "JSON" in plain
    with_schema = JsonOutputParser(pydantic_object=Person).get_format_instructions()
    schema = json.loads(with_schema.split("```json\n")[1].split("\n```")[0])
    assert schema["properties"]["age"]["type"] == "integer"
    assert schema["required"] == ["name", "age"]
    # the schema only shapes instructions: the output stays plain data
    assert JsonOutputParser(pydantic_object=Person).invoke('{"name": "A", "age": 3}') == {
        "name": "A",
        "age": 3,
    }


# ----------------------------------------------------------------------------- JSON streams
def test_json_stream_yields_changed_snapshots_in_order():
    pieces = ['{"na', 'me": "Ki', 'm", "tags": ["a"', ', "b"], "age": 4', "2}"]
    snapshots = list(JsonOutputParser().transform(iter(stream_of(*pieces))))
    assert snapshots == [
        {},
        {"name": "Ki"},
        {"name": "Kim", "tags": ["a"]},
        {"name": "Kim", "tags": ["a", "b"], "age": 4},
        {"name": "Kim", "tags": ["a", "b"], "age": 42},
    ]
    assert collect_async(JsonOutputParser(), stream_of(*pieces)) == snapshots


def test_json_stream_skips_unchanged_snapshots():
    # the second and third pieces add only syntax: the parsed value does not change
    snapshots = list(JsonOutputParser().transform(iter(['{"a": 1', ",", " ", '"b": 2}'])))
    assert snapshots == [{"a": 1}, {"a": 1, "b": 2}]


def test_json_stream_character_by_character_from_a_fenced_answer():
    text = 'Here you go:\n```json\n{"items": [{"id": 1, "ok": true}, {"id": 2, "ok": false}]}\n```\nDone.'
    snapshots = list(JsonOutputParser().transform(iter(text)))
    assert snapshots[0] == {}
    assert snapshots[-1] == {"items": [{"id": 1, "ok": True}, {"id": 2, "ok": False}]}
    assert all(a != b for a, b in zip(snapshots, snapshots[1:], strict=False))
    assert {"items": [{"id": 1, "ok": True}]} in snapshots  # a literal completed from its prefix


def test_json_stream_skips_braces_in_prose():
    snapshots = list(JsonOutputParser().transform(iter("Fill {name} in: " + '{"name": "x"}')))
    assert snapshots[-1] == {"name": "x"}
    assert all(isinstance(s, dict) for s in snapshots)


def test_json_stream_truncated_answer_raises_at_the_end():
    parser = JsonOutputParser()
    seen = []
    with pytest.raises(OutputParserError) as info:
        for value in parser.transform(iter(['{"a": [1, ', "2"])):
            seen.append(value)
    assert seen == [{"a": [1]}, {"a": [1, 2]}]
    assert info.value.raw == '{"a": [1, 2'


def test_json_stream_of_a_bare_scalar_yields_it_at_the_end():
    assert list(JsonOutputParser().transform(iter(["4", "2"]))) == [42]


def test_json_chain_stream_and_invoke():
    chain = (
        ChatPromptTemplate.from_template("{q}")
        | fake_model('{"x"', ": [1,", " 2]}")
        | JsonOutputParser()
    )
    assert list(chain.stream("q")) == [{}, {"x": [1]}, {"x": [1, 2]}]
    assert chain.invoke("q") == {"x": [1, 2]}


# ----------------------------------------------------------------------------- pydantic
class Movie(BaseModel):
    title: str
    year: int
    genres: list[str] = []


def test_pydantic_parser_validates_into_the_model():
    parser = PydanticOutputParser(Movie)
    movie = parser.invoke(AIMessage('```json\n{"title": "Parasite", "year": 2019}\n```'))
    assert movie == Movie(title="Parasite", year=2019)
    assert parser.parse('{"title": "Oldboy", "year": "2003"}').year == 2003  # pydantic coercion


def test_pydantic_parser_errors_show_raw_text_and_validation_errors():
    raw = '{"title": "X", "year": "soon", "genres": "drama"}'
    with pytest.raises(OutputParserError) as info:
        PydanticOutputParser(Movie).invoke(raw)
    message = str(info.value)
    assert "does not match Movie" in message
    assert "year:" in message and "genres:" in message
    assert info.value.raw == raw
    assert raw in message
    with pytest.raises(OutputParserError, match="no valid JSON"):
        PydanticOutputParser(Movie).invoke("I cannot answer that.")


def test_pydantic_parser_missing_field_is_named():
    with pytest.raises(OutputParserError, match=r"year: Field required"):
        PydanticOutputParser(Movie).invoke('{"title": "X"}')


def test_pydantic_format_instructions_hold_the_schema():
    text = PydanticOutputParser(Movie).get_format_instructions()
    schema = json.loads(text.split("```json\n")[1].split("\n```")[0])
    assert schema == Movie.model_json_schema()


def test_pydantic_parser_with_a_type_adapter_type():
    parser = PydanticOutputParser(list[Movie])
    out = parser.invoke('[{"title": "A", "year": 1}, {"title": "B", "year": 2}]')
    assert [m.title for m in out] == ["A", "B"]
    assert '"items"' in parser.get_format_instructions()
    with pytest.raises(OutputParserError, match=r"1\.year"):
        parser.invoke('[{"title": "A", "year": 1}, {"title": "B"}]')


def test_pydantic_parser_streams_one_validated_value():
    pieces = ['{"title": "Pa', 'rasite", "ye', 'ar": 2019}']
    parser = PydanticOutputParser(Movie)
    assert list(parser.transform(iter(stream_of(*pieces)))) == [Movie(title="Parasite", year=2019)]
    assert collect_async(parser, stream_of(*pieces)) == [Movie(title="Parasite", year=2019)]
    assert asyncio.run(parser.ainvoke(HumanMessage('{"title": "T", "year": 1}'))).title == "T"


def test_pydantic_parser_refuses_what_pydantic_cannot_validate():
    with pytest.raises(TypeError, match="PydanticOutputParser needs"):
        PydanticOutputParser(object())


# ----------------------------------------------------------------------------- partial JSON
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", {}),
        ("[", []),
        ('{"a', {}),
        ('{"a"', {}),
        ('{"a":', {}),
        ('{"a": ', {}),
        ('{"a": "', {"a": ""}),
        ('{"a": "He', {"a": "He"}),
        ('{"a": 1,', {"a": 1}),
        ('{"a": 1, "b', {"a": 1}),
        ("[1, 2,", [1, 2]),
        ('[1, "x', [1, "x"]),
        ('{"a": {"b": [1, {"c": "d', {"a": {"b": [1, {"c": "d"}]}}),
        ('{"a": {"b": {', {"a": {"b": {}}}),
        ("[[], [[", [[], [[]]]),
        # escapes cut mid-way
        ('"ab\\', "ab"),
        ('"ab\\n', "ab\n"),
        ('"ab\\u', "ab"),
        ('"ab\\u00e', "ab"),
        ('"ab\\u00e9', "abé"),
        ('"q: \\"hi', 'q: "hi'),
        ('"\\\\', "\\"),
        # surrogate pair cut between its halves: the high half waits
        ('"x\\ud83d', "x"),
        ('"x\\ud83d\\u', "x"),
        ('"x\\ud83d\\ude00', "x😀"),
        ('"x\\\\ud83d', "x\\ud83d"),  # an escaped backslash, then plain text
        # raw unicode
        ('{"인사": "안녕하', {"인사": "안녕하"}),
        ('["😀', ["😀"]),
        # numbers cut mid-way
        ("[-", []),
        ("[1", [1]),
        ("[12.", [12]),
        ("[12.5", [12.5]),
        ("[1e", [1]),
        ("[1e-", [1]),
        ("[1.5E+3", [1500.0]),
        ("[-0", [0]),
        ('{"n": -', {}),
        ("12", 12),
        ("-3.25", -3.25),
        # literals cut mid-way
        ("[t", [True]),
        ("[tr", [True]),
        ("[true", [True]),
        ("[f", [False]),
        ("[fals", [False]),
        ("[n", [None]),
        ("[nul", [None]),
        ('{"ok": t', {"ok": True}),
        # complete documents
        (
            '{"a": [1, 2.5, -3e2, true, false, null, "s"]}',
            {"a": [1, 2.5, -300.0, True, False, None, "s"]},
        ),
        ("  [ ]  ", []),
        ("{ }", {}),
    ],
)
def test_partial_json(text, expected):
    value = parse_partial_json(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "{a",
        "{'a': 1}",
        "[1,]",
        '{"a" 1}',
        '{"a": 1 "b"}',
        "[01",
        "[1.x",
        "[1.e5",
        "[.5",
        "[-x",
        "[tx",
        "[nil",
        '{"a": 1} extra',
        '"bad \\x escape"',
        "--1",
        "[1 2]",
        "{,",
    ],
)
def test_partial_json_refuses_invalid_prefixes(text):
    with pytest.raises(ValueError):
        parse_partial_json(text)


@pytest.mark.parametrize("text", ["", "   ", "-", "\n\t"])
def test_partial_json_without_a_value_yet(text):
    with pytest.raises(ValueError, match="no JSON value"):
        parse_partial_json(text)


DOCUMENTS = [
    {"name": "Kim", "age": 42, "tags": ["a", "b"], "nested": {"x": [1, 2.5, -3e-2], "y": None}},
    [{"id": 1, "ok": True, "s": 'quote " backslash \\ tab \t'}, {"id": 2, "ok": False}],
    {"유니코드": "한국어 텍스트 😀 é", "empty": {}, "list": [], "n": -0.0001},
    {"deep": [[[[{"a": [True, False, None]}]]]]},
]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_every_prefix_of_a_document_parses(document, ensure_ascii):
    text = json.dumps(document, ensure_ascii=ensure_ascii, indent=1 if ensure_ascii else None)
    previous = None
    for end in range(1, len(text) + 1):
        try:
            value = parse_partial_json(text[:end])
        except ValueError as exc:
            assert "no JSON value" in str(exc), (text[:end], exc)
            continue
        assert isinstance(value, type(document))
        previous = value
    assert previous == document == json.loads(text)


def test_json_snapshots_gathered_downstream_give_the_final_value():
    chain = fake_model('{"a": "He', 'llo", "b": [1', ", 2]}") | JsonOutputParser() | (lambda d: d)
    assert list(chain.stream("q")) == [{"a": "Hello", "b": [1, 2]}]


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if isinstance(d, dict | list)])
@pytest.mark.parametrize("step", [1, 3, 7])
def test_incremental_stream_parse_equals_the_partial_parser_at_every_prefix(document, step):
    from maru.parsers import _NOTHING, _JsonStream

    text = json.dumps(document, ensure_ascii=False, indent=2 if step == 3 else None)
    state = _JsonStream()
    expected_last = None
    for end in range(step, len(text) + step, step):
        pushed = state.push(text[end - step : end])
        try:
            expected = parse_partial_json(text[:end])
        except ValueError:
            assert pushed is _NOTHING
            continue
        if expected != expected_last:
            assert pushed == expected, text[:end]
            expected_last = expected
        else:
            assert pushed is _NOTHING
    assert state.finish() is _NOTHING  # the last snapshot already was the whole document
    assert expected_last == document


def test_stream_snapshots_are_not_changed_by_later_pieces():
    parser = JsonOutputParser()
    snapshots = list(parser.transform(iter(['{"a": [1, {"b": "x', '"}, 2], "c": {"d"', ": 4}}"])))
    assert snapshots == [
        {"a": [1, {"b": "x"}]},
        {"a": [1, {"b": "x"}, 2], "c": {}},
        {"a": [1, {"b": "x"}, 2], "c": {"d": 4}},
    ]


def test_json_array_snapshots_gathered_downstream_give_the_final_value():
    chain = fake_model("[1", ", 2", ", 3]") | JsonOutputParser() | (lambda d: d)
    assert chain.invoke("q") == [1, 2, 3]
