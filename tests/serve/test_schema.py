"""Input/output type inference, the OpenAPI document built from it, JSON conversion and redaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from maru import parallel, runnable
from maru.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolCallChunk
from maru.models import ScriptedChatModel
from maru.parsers import JsonOutputParser, PydanticOutputParser, StrOutputParser
from maru.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from maru.serve import create_app, infer_types, redact
from maru.serve.encoding import to_json_safe
from maru.serve.schema import AIMessageOutput, ChatMessage, decode_input

from .conftest import live_server
from .serve_targets import Answer, Question, travel_chain, typed_chain


def schema_of(tp: Any) -> dict[str, Any]:
    return TypeAdapter(tp).json_schema()


# ----------------------------------------------------------------------------- infer_types
def test_function_annotations() -> None:
    def f(x: int, config: Any = None) -> list[str]:
        return []

    assert infer_types(runnable(f)) == (int, list[str])


class Opaque:
    """A class pydantic cannot validate or describe."""


def opaque(x: Opaque) -> Opaque:
    return x


def test_unannotated_and_unknown_are_any() -> None:
    class Local:
        pass

    def local(x: Local) -> Local:  # an annotation that cannot be resolved from module globals
        return x

    assert infer_types(runnable(lambda x: x)) == (Any, Any)
    assert infer_types(runnable(opaque)) == (Any, Any)  # pydantic cannot describe it: Any, not an error
    assert infer_types(runnable(local)) == (Any, Any)
    assert infer_types(runnable(lambda x: x) | (lambda y: y)) == (Any, Any)


def test_sequence_takes_first_input_and_last_output() -> None:
    assert infer_types(typed_chain) == (Question, Answer)


class Scaler:
    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, x: float) -> float:
        return x * self.k


def test_callable_objects_use_their_call_annotations() -> None:
    assert infer_types(runnable(Scaler(2))) == (float, float)


def test_generator_steps_unwrap_iterators() -> None:
    def words(chunks: Iterator[str]) -> Iterator[list[str]]:
        yield from ([c] for c in chunks)

    assert infer_types(runnable(words)) == (str, list[str])


def test_messages_become_message_dicts() -> None:
    def f(messages: list[BaseMessage]) -> AIMessage:
        return AIMessage("x")

    in_type, out_type = infer_types(runnable(f))
    assert in_type == list[ChatMessage]
    assert out_type is AIMessageOutput


def test_parallel_output_is_an_object_of_branch_outputs() -> None:
    def length(s: str) -> int:
        return len(s)

    def upper(s: str) -> str:
        return s.upper()

    in_type, out_type = infer_types(parallel(n=length, text=upper))
    assert in_type is str
    schema = schema_of(out_type)
    assert schema["properties"] == {"n": {"title": "N", "type": "integer"}, "text": {"title": "Text", "type": "string"}}
    assert sorted(schema["required"]) == ["n", "text"]


def test_chat_model_and_wrappers() -> None:
    model = ScriptedChatModel(replies=["x"])
    expected = (str | list[ChatMessage], AIMessageOutput)
    assert infer_types(model) == expected
    assert infer_types(model.bind(temperature=0)) == expected
    assert infer_types(model.with_retry(max_attempts=2)) == expected
    assert infer_types(model.with_fallbacks([model])) == expected
    assert infer_types(model.with_config(tags=["t"])) == expected


def test_parsers() -> None:
    assert infer_types(StrOutputParser())[1] is str
    assert infer_types(PydanticOutputParser(Answer))[1] is Answer
    assert infer_types(JsonOutputParser())[1] is Any
    assert infer_types(JsonOutputParser(Answer))[1] is Answer


def test_prompt_input_fields() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "{style}"), MessagesPlaceholder("history"), MessagesPlaceholder("extra", optional=True), ("human", "{q}")]
    )
    in_type, out_type = infer_types(prompt)
    schema = schema_of(in_type)
    props = schema["properties"]
    assert set(props) == {"style", "history", "extra", "q"}
    assert sorted(schema["required"]) == ["history", "q", "style"]
    assert schema["additionalProperties"] is False
    assert props["history"]["items"] == {"$ref": "#/$defs/ChatMessage"}
    assert {t["type"] for t in props["q"]["anyOf"]} == {"string", "integer", "number", "boolean"}
    assert schema_of(out_type)["properties"]["messages"]["type"] == "array"
    # a single-variable prompt also takes the bare value
    single_in, single_out = infer_types(PromptTemplate("Tell me about {topic}"))
    assert TypeAdapter(single_in).validate_python("cats") == "cats"
    assert schema_of(single_out)["properties"] == {"text": {"title": "Text", "type": "string"}}


def test_prompt_variable_names_that_clash_with_pydantic_are_fine() -> None:
    prompt = PromptTemplate("{json} {schema} {model_config}")
    in_type, _ = infer_types(prompt)
    value = TypeAdapter(in_type).validate_python({"json": "a", "schema": 1, "model_config": True})
    assert decode_input(value) == {"json": "a", "schema": 1, "model_config": True}
    assert prompt.invoke(decode_input(value)).to_string() == "a 1 True"


def test_decode_input_turns_message_dicts_into_messages_and_keeps_user_models() -> None:
    in_type, _ = infer_types(travel_chain())
    value = TypeAdapter(in_type).validate_python(
        {"style": "s", "city": "c", "history": [{"role": "user", "content": "hi"}]}
    )
    decoded = decode_input(value)
    assert decoded == {"style": "s", "city": "c", "history": [HumanMessage("hi")]}
    value = TypeAdapter(in_type).validate_python({"style": "s", "city": "c"})
    assert decode_input(value) == {"style": "s", "city": "c"}  # the optional placeholder left out
    assert isinstance(decode_input(Question(text="q")), Question)


# ----------------------------------------------------------------------------- OpenAPI over HTTP
def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_openapi_has_the_typed_chain_types() -> None:
    with live_server(create_app(typed_chain)) as url:
        doc = httpx.get(f"{url}/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    request = schemas["InvokeRequest"]
    assert request["required"] == ["input"]
    question = resolve(doc, request["properties"]["input"])
    assert question["properties"]["text"]["type"] == "string"
    assert question["properties"]["repeat"]["type"] == "integer"
    assert question["required"] == ["text"]
    answer = resolve(doc, schemas["InvokeResponse"]["properties"]["output"])
    assert set(answer["properties"]) == {"text", "words"}
    invoke = doc["paths"]["/invoke"]["post"]
    assert invoke["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InvokeRequest"}
    assert {"413", "422", "500"} <= set(invoke["responses"])
    batch_items = schemas["BatchResponse"]["properties"]["outputs"]["items"]["anyOf"]
    assert {"$ref": "#/components/schemas/Answer"} in batch_items
    assert {"$ref": "#/components/schemas/ErrorItem"} in batch_items
    assert "text/event-stream" in doc["paths"]["/stream"]["post"]["responses"]["200"]["content"]
    assert "/stream_events" in doc["paths"] and "/health" in doc["paths"]


def test_openapi_has_the_prompt_model_parser_types() -> None:
    chain = ChatPromptTemplate.from_messages([("system", "Be {style}."), ("human", "{question}")])
    chain = chain | ScriptedChatModel(replies=["ok"]) | StrOutputParser()
    with live_server(create_app(chain, title="Q&A")) as url:
        doc = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert doc["info"]["title"] == "Q&A"
    schemas = doc["components"]["schemas"]
    inputs = resolve(doc, schemas["InvokeRequest"]["properties"]["input"])
    assert set(inputs["properties"]) == {"style", "question"}
    assert sorted(inputs["required"]) == ["question", "style"]
    assert inputs["additionalProperties"] is False
    assert schemas["InvokeResponse"]["properties"]["output"]["type"] == "string"


def test_openapi_for_a_chat_model_documents_message_dicts() -> None:
    with live_server(create_app(ScriptedChatModel(replies=["ok"], cycle=True))) as url:
        doc = httpx.get(f"{url}/openapi.json", timeout=30).json()
        r = httpx.post(f"{url}/invoke", json={"input": [{"role": "user", "content": "hi"}]}, timeout=30)
    schemas = doc["components"]["schemas"]
    variants = schemas["InvokeRequest"]["properties"]["input"]["anyOf"]
    assert {"type": "string"} in variants
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ChatMessage"}} in variants
    output = resolve(doc, schemas["InvokeResponse"]["properties"]["output"])
    assert {"role", "content", "tool_calls", "usage"} <= set(output["properties"])
    assert r.status_code == 200
    out = r.json()["output"]
    assert out["role"] == "assistant" and out["content"] == "ok" and out["usage"]["output_tokens"] >= 1


def test_explicit_types_override_inference() -> None:
    app = create_app(lambda x: x, input_type=list[int], output_type=int)
    doc = app.openapi()
    assert doc["components"]["schemas"]["InvokeRequest"]["properties"]["input"]["items"] == {"type": "integer"}


# ----------------------------------------------------------------------------- JSON conversion
def test_to_json_safe_decisions() -> None:
    import datetime as dt
    import enum
    import uuid
    from decimal import Decimal
    from pathlib import Path

    class Color(enum.Enum):
        RED = "red"

    @dataclass
    class Point:
        x: int
        tags: set[str]

    chunk = AIMessageChunk("", tool_call_chunks=[ToolCallChunk(0, "id1", "search", '{"q"')])
    assert to_json_safe(chunk)["tool_call_chunks"] == [{"index": 0, "id": "id1", "name": "search", "args": '{"q"'}]
    assert to_json_safe(Answer(text="a", words=1)) == {"text": "a", "words": 1}
    assert to_json_safe(Point(1, {"a"})) == {"x": 1, "tags": ["a"]}
    assert to_json_safe(b"hi") == "aGk="
    assert to_json_safe(dt.date(2024, 1, 2)) == "2024-01-02"
    assert to_json_safe(dt.timedelta(seconds=90)) == 90.0
    assert to_json_safe(Color.RED) == "red"
    assert to_json_safe(Decimal("1.10")) == "1.10"
    assert to_json_safe(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_json_safe(Path("/tmp/x")) == "/tmp/x"
    assert to_json_safe(float("inf")) is None
    assert to_json_safe(ValueError("key sk-abcdefgh12345678")) == {"type": "ValueError", "message": "key sk-***"}
    assert to_json_safe(PromptTemplate("{a}").invoke({"a": "x"})) == {"text": "x"}
    assert to_json_safe(object.__new__(type("Thing", (), {"__str__": lambda self: "thing"}))) == "thing"
    loop: list[Any] = []
    loop.append(loop)
    assert isinstance(to_json_safe(loop), list)  # a cycle is cut, not a RecursionError


# ----------------------------------------------------------------------------- redaction
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-proj-abcDEF123456789xyz rejected", "key sk-*** rejected"),
        ("Authorization: Bearer abc.def.ghi123456", "Authorization: Bearer ***"),
        ("bearer ya29.a0AfH6SMBx", "bearer ***"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu is invalid", "AIza*** is invalid"),
        ('{"api_key": "s3cr3t-value"}', '{"api_key": "***"}'),
        ("OPENAI_API_KEY=abcdef123456 missing", "OPENAI_API_KEY=*** missing"),
        ("password=hunter22", "password=***"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh*_***"),
        ("nothing secret here: 42 tokens, sk- alone", "nothing secret here: 42 tokens, sk- alone"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_import_maru_and_maru_serve_do_not_load_fastapi() -> None:
    import subprocess
    import sys

    code = (
        "import sys, maru, maru.cli, maru.serve; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
