"""PromptTemplate: variables, strict input checking, partials, composition and the runnable API."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from maru.core import listen, pick, runnable
from maru.errors import PromptError
from maru.messages import HumanMessage, SystemMessage, to_messages
from maru.prompts import ChatPromptTemplate, PromptTemplate, PromptValue, StringPromptValue


def test_invoke_returns_a_prompt_value():
    prompt = PromptTemplate.from_template("Tell me a joke about {topic} in {language}.")
    assert prompt.input_variables == ["topic", "language"]
    value = prompt.invoke({"topic": "cats", "language": "Korean"})
    assert isinstance(value, PromptValue)
    assert value == StringPromptValue("Tell me a joke about cats in Korean.")
    assert value.to_string() == str(value) == "Tell me a joke about cats in Korean."
    assert value.to_messages() == [HumanMessage("Tell me a joke about cats in Korean.")]
    # chat models take it through to_messages
    assert to_messages(value) == [HumanMessage("Tell me a joke about cats in Korean.")]


def test_format_returns_text_and_format_messages_a_human_message():
    prompt = PromptTemplate("Q: {q}")
    assert prompt.format(q="why?") == "Q: why?"
    assert prompt.format_messages(q="why?") == [HumanMessage("Q: why?")]
    assert prompt.format_prompt(q="why?") == StringPromptValue("Q: why?")
    assert prompt.template == "Q: {q}"


def test_single_variable_prompt_takes_a_bare_value():
    prompt = PromptTemplate("Summarise: {text}")
    assert prompt.invoke("a long story").to_string() == "Summarise: a long story"
    assert prompt.invoke(42).to_string() == "Summarise: 42"


def test_constant_prompt_takes_an_empty_dict_or_none():
    prompt = PromptTemplate("Say hi {{politely}}")
    assert prompt.input_variables == []
    assert prompt.invoke({}).to_string() == "Say hi {politely}"
    assert prompt.invoke(None).to_string() == "Say hi {politely}"


def test_missing_variable_names_it_and_the_expected_ones():
    prompt = PromptTemplate("{topic} in {language}")
    with pytest.raises(PromptError) as info:
        prompt.invoke({"topic": "cats"})
    message = str(info.value)
    assert "missing variable(s) 'language'" in message
    assert "expects 'topic', 'language'" in message
    assert isinstance(info.value, KeyError)  # LangChain code catching KeyError still works


def test_unexpected_variable_is_refused_and_named():
    prompt = PromptTemplate("{topic}")
    with pytest.raises(PromptError, match=r"unexpected variable\(s\) 'topik'.*allow_extra=True"):
        prompt.invoke({"topic": "cats", "topik": "dogs"})


def test_misspelt_key_reports_both_the_extra_and_the_missing_variable():
    prompt = PromptTemplate("{question} {context}")
    with pytest.raises(PromptError) as info:
        prompt.invoke({"questoin": "q", "context": "c"})  # same key count: caught while rendering
    message = str(info.value)
    assert "'questoin'" in message and "missing 'question'" in message


def test_allow_extra_ignores_extra_keys_but_still_requires_the_needed_ones():
    prompt = PromptTemplate("{question}", allow_extra=True)
    assert prompt.invoke({"question": "q", "history": [], "user": "u"}).to_string() == "q"
    with pytest.raises(PromptError, match="missing variable.*'question'"):
        prompt.invoke({"history": []})


def test_non_dict_input_for_a_multi_variable_prompt_is_refused():
    with pytest.raises(PromptError, match="takes a dict of variables 'a', 'b', got str"):
        PromptTemplate("{a}{b}").invoke("x")


def test_mapping_inputs_are_accepted():
    from types import MappingProxyType

    assert PromptTemplate("{a}").invoke(MappingProxyType({"a": 1})).to_string() == "1"


def test_input_variables_argument_is_checked_against_the_template():
    assert PromptTemplate("{a} {b}", input_variables=["b", "a"]).input_variables == ["a", "b"]
    with pytest.raises(PromptError, match="do not match"):
        PromptTemplate("{a}", input_variables=["a", "b"])


def test_unsupported_template_formats_are_refused():
    with pytest.raises(PromptError, match="jinja2"):
        PromptTemplate("{{ x }}", template_format="jinja2")
    with pytest.raises(PromptError, match="mustache"):
        PromptTemplate.from_template("{{x}}", template_format="mustache")


def test_malformed_template_fails_when_built():
    with pytest.raises(PromptError, match="never closed"):
        PromptTemplate("Hello {name")
    with pytest.raises(PromptError, match="attribute or index access"):
        PromptTemplate("{x.__class__.__init__.__globals__}")


# ----------------------------------------------------------------------------- partials
def test_partial_with_values_and_callables_evaluated_at_each_format():
    counter = itertools.count(1)
    prompt = PromptTemplate("[{n}] {date}: {text}").partial(
        date="2024-05-01", n=lambda: next(counter)
    )
    assert prompt.input_variables == ["text"]
    assert prompt.partial_variables["date"] == "2024-05-01"
    assert prompt.invoke("first").to_string() == "[1] 2024-05-01: first"
    assert prompt.invoke({"text": "second"}).to_string() == "[2] 2024-05-01: second"
    assert prompt.format(text="third") == "[3] 2024-05-01: third"


def test_partial_leaves_the_original_untouched_and_can_be_overridden():
    base = PromptTemplate("{greeting}, {name}")
    hello = base.partial(greeting="Hello")
    assert base.input_variables == ["greeting", "name"]
    assert hello.invoke("Ann").to_string() == "Hello, Ann"
    assert hello.invoke({"name": "Ann", "greeting": "Hi"}).to_string() == "Hi, Ann"
    assert hello.partial(name="Bo").invoke({}).to_string() == "Hello, Bo"


def test_partial_of_an_unknown_variable_is_refused():
    with pytest.raises(PromptError, match="'nme'.*does not use"):
        PromptTemplate("{name}").partial(nme="x")


def test_partial_variables_in_the_constructor():
    prompt = PromptTemplate("{a}-{b}", partial_variables={"a": "A"})
    assert prompt.input_variables == ["b"]
    assert prompt.invoke("B").to_string() == "A-B"


def test_missing_variable_with_partials():
    prompt = PromptTemplate("{a}{b}{c}").partial(a="A")
    with pytest.raises(PromptError, match=r"missing variable\(s\) 'c'.*expects 'b', 'c'"):
        prompt.invoke({"b": 1})


# ----------------------------------------------------------------------------- composition
def test_adding_prompts_and_strings():
    joined = PromptTemplate("Answer {question}.").partial(question="why") + PromptTemplate(
        " In {language}."
    )
    assert isinstance(joined, PromptTemplate)
    assert joined.input_variables == ["language"]
    assert joined.invoke("Korean").to_string() == "Answer why. In Korean."
    assert (PromptTemplate("{a}") + " and {b}").input_variables == ["a", "b"]
    assert ("Context: {ctx}\n" + PromptTemplate("{q}")).format(ctx="c", q="q") == "Context: c\nq"
    assert (PromptTemplate("{a}", allow_extra=True) + "{b}").allow_extra


def test_adding_a_message_makes_a_chat_prompt():
    chat = PromptTemplate("Hi {name}") + SystemMessage("be brief")
    assert isinstance(chat, ChatPromptTemplate)
    assert chat.format_messages(name="Ann") == [HumanMessage("Hi Ann"), SystemMessage("be brief")]
    chat2 = PromptTemplate("{a}") + ("ai", "{b}")
    assert chat2.input_variables == ["a", "b"]


def test_adding_something_else_is_a_type_error():
    with pytest.raises(TypeError):
        PromptTemplate("{a}") + 3  # type: ignore[operator]


# ----------------------------------------------------------------------------- runnable API
def test_runnable_kind_name_and_async_batch_stream():
    prompt = PromptTemplate("Hi {name}")
    assert prompt.kind == "prompt"
    assert prompt.name == "PromptTemplate"
    assert [v.to_string() for v in prompt.batch(["a", "b"])] == ["Hi a", "Hi b"]
    assert [v.to_string() for v in prompt.stream("a")] == ["Hi a"]

    async def main():
        one = await prompt.ainvoke({"name": "x"})
        many = await prompt.abatch([{"name": "y"}, "z"])
        chunks = [c async for c in prompt.astream("w")]
        return one, many, chunks

    one, many, chunks = asyncio.run(main())
    assert one.to_string() == "Hi x"
    assert [v.to_string() for v in many] == ["Hi y", "Hi z"]
    assert [c.to_string() for c in chunks] == ["Hi w"]


def test_batch_return_exceptions_keeps_prompt_errors():
    prompt = PromptTemplate("{a}{b}")
    out = prompt.batch([{"a": 1, "b": 2}, {"a": 1}], return_exceptions=True)
    assert out[0].to_string() == "12"
    assert isinstance(out[1], PromptError)


def test_in_a_chain_with_a_dict_step_in_front():
    chain = {"topic": pick("subject"), "n": lambda d: len(d["subject"])} | PromptTemplate(
        "{topic} has {n} letters"
    )
    assert chain.invoke({"subject": "maru"}).to_string() == "maru has 4 letters"
    # streaming the chain: the parallel map streams dict pieces the prompt gathers
    assert [v.to_string() for v in chain.stream({"subject": "maru"})] == ["maru has 4 letters"]


def test_chain_to_a_model_like_step():
    @runnable
    def echo_model(value):
        return " / ".join(m.text for m in to_messages(value))

    chain = PromptTemplate("Q: {q}") | echo_model
    assert chain.invoke("why") == "Q: why"
    assert asyncio.run(chain.ainvoke({"q": "how"})) == "Q: how"


def test_events_report_the_prompt_kind():
    events = []
    with listen(events.append):
        PromptTemplate("Hi {name}").invoke("Ann")
    kinds = {(e.kind, e.phase) for e in events}
    assert ("prompt", "start") in kinds and ("prompt", "end") in kinds
    end = next(e for e in events if e.phase == "end")
    assert end.data["output"].to_string() == "Hi Ann"


def test_errors_in_a_traced_chain_are_the_prompt_error():
    events = []
    with listen(events.append), pytest.raises(PromptError, match="'name'"):
        PromptTemplate("Hi {name} {x}").invoke({"x": 1})
    assert any(e.phase == "error" and e.kind == "prompt" for e in events)
