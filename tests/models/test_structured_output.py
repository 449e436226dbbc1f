"""with_structured_output over the scripted model: what is requested, what is parsed, what fails."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from maru.errors import OutputParserError, ProviderError
from maru.messages import AIMessage, ToolCall
from maru.models import ScriptedChatModel


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


def test_json_schema_method_requests_the_schema_and_returns_a_model() -> None:
    model = ScriptedChatModel(['{"name": "Ada", "age": 36}'])
    person = model.with_structured_output(Person).invoke("Ada is 36")
    assert person == Person(name="Ada", age=36)
    fmt = model.calls[0].params["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["description"] == "A person mentioned in the text."
    assert fmt["json_schema"]["schema"]["required"] == ["name", "age"]
    assert "strict" not in fmt["json_schema"]


def test_strict_flag_and_code_fenced_json() -> None:
    model = ScriptedChatModel(['```json\n{"name": "Lin", "age": 3}\n```'])
    assert model.with_structured_output(Person, strict=True).invoke("x") == Person(
        name="Lin", age=3
    )
    assert model.calls[0].params["response_format"]["json_schema"]["strict"] is True


def test_invalid_json_raises_output_parser_error_with_raw_text() -> None:
    model = ScriptedChatModel(["Not JSON.", "Sorry, I cannot help with that."])
    with pytest.raises(OutputParserError) as info:
        model.with_structured_output(Person).invoke("x")  # one repair round, then the error
    assert info.value.raw == "Sorry, I cannot help with that."
    assert "Sorry, I cannot help" in str(info.value) and "Person" in str(info.value)


def test_schema_mismatch_raises_output_parser_error() -> None:
    model = ScriptedChatModel(['{"name": "Ada", "age": "old"}'], cycle=True)
    with pytest.raises(OutputParserError, match="does not match Person") as info:
        model.with_structured_output(Person).invoke("x")
    assert info.value.raw == '{"name": "Ada", "age": "old"}'


def test_refusal_is_reported() -> None:
    model = ScriptedChatModel([AIMessage("", response_metadata={"refusal": "I won't."})], cycle=True)
    with pytest.raises(OutputParserError, match="refused") as info:
        model.with_structured_output(Person).invoke("x")
    assert info.value.raw == "I won't."


def test_tool_method_forces_the_tool_and_reads_its_arguments() -> None:
    reply = AIMessage("", tool_calls=[ToolCall("Person", {"name": "Kim", "age": 51}, "c1")])
    model = ScriptedChatModel([reply, AIMessage("no tool here")])
    chain = model.with_structured_output(Person, method="tool")
    assert chain.invoke("x") == Person(name="Kim", age=51)
    params = model.calls[0].params
    assert params["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    assert [t["function"]["name"] for t in params["tools"]] == ["Person"]
    with pytest.raises(OutputParserError, match="did not call the tool 'Person'") as info:
        chain.invoke("x")
    assert info.value.raw == "no tool here"


def test_streaming_and_async_structured_output() -> None:
    model = ScriptedChatModel(['{"name": "Bo", "age": 2}'], cycle=True)
    chain = model.with_structured_output(Person)
    assert list(chain.stream("x")) == [Person(name="Bo", age=2)]
    assert asyncio.run(chain.ainvoke("x")) == Person(name="Bo", age=2)
    tool_model = ScriptedChatModel(
        [AIMessage("", tool_calls=[ToolCall("Person", {"name": "S", "age": 1})])]
    )
    assert list(tool_model.with_structured_output(Person, method="tool").stream("x")) == [
        Person(name="S", age=1)
    ]


def test_bad_arguments() -> None:
    model = ScriptedChatModel([])
    with pytest.raises(TypeError, match="pydantic model class"):
        model.with_structured_output({"type": "object"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method='xml'.*'auto'"):
        model.with_structured_output(Person, method="xml")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- method="auto"
def _refusal(parameter: str) -> ProviderError:
    return ProviderError(f"Error code: 500 - unsupported {parameter} type 'json_schema'")


def test_auto_falls_back_once_when_the_server_refuses_json_schema_and_remembers() -> None:
    model = ScriptedChatModel(
        [_refusal("response_format"), '{"name": "Ada", "age": 36}', '{"name": "Bo", "age": 2}'],
        model="refuses-json-schema",
    )
    chain = model.with_structured_output(Person)
    assert chain.invoke("Ada is 36") == Person(name="Ada", age=36)
    assert model.calls[0].params["response_format"]["type"] == "json_schema"
    fmt = model.calls[1].params["response_format"]
    assert fmt["type"] == "json_object" and fmt["schema"]["required"] == ["name", "age"]
    assert chain.invoke("Bo is 2") == Person(name="Bo", age=2)  # no second refusal
    assert model.calls[2].params["response_format"]["type"] == "json_object"


def test_auto_goes_on_to_a_forced_tool_then_to_the_prompt() -> None:
    tool_reply = AIMessage("", tool_calls=[ToolCall("Person", {"name": "Kim", "age": 51})])
    model = ScriptedChatModel(
        [_refusal("response_format"), _refusal("response_format"), tool_reply], model="tools-only"
    )
    assert model.with_structured_output(Person).invoke("x") == Person(name="Kim", age=51)
    assert model.calls[2].params["tool_choice"]["function"]["name"] == "Person"
    bare = ScriptedChatModel(
        [_refusal("response_format"), _refusal("response_format"),
         ProviderError("tool_choice is not supported"), '{"name": "Li", "age": 9}'],
        model="text-only",
    )
    assert bare.with_structured_output(Person).invoke("x") == Person(name="Li", age=9)
    prompt = bare.calls[3]
    assert "response_format" not in prompt.params and "JSON schema" in prompt.messages[0].content


def test_auto_does_not_hide_errors_that_are_not_refusals() -> None:
    model = ScriptedChatModel([ProviderError("Error code: 401 - invalid api key")], model="bad-key")
    with pytest.raises(ProviderError, match="401"):
        model.with_structured_output(Person).invoke("x")
    assert len(model.calls) == 1


def test_auto_repairs_one_bad_reply_by_showing_the_model_its_error() -> None:
    model = ScriptedChatModel(['{"name": "Ada"}', '{"name": "Ada", "age": 36}'], model="repairs")
    assert model.with_structured_output(Person).invoke("Ada is 36") == Person(name="Ada", age=36)
    repair = model.calls[1].messages
    assert repair[-2].content == '{"name": "Ada"}' and "could not be used" in repair[-1].content
    assert "age" in repair[-1].content  # the validation error names the missing field
