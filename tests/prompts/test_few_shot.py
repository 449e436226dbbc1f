"""Few-shot prompts from a fixed list of examples."""

from __future__ import annotations

import pytest

from maru.errors import PromptError
from maru.messages import AIMessage, HumanMessage, SystemMessage
from maru.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    HumanMessagePromptTemplate,
    PromptTemplate,
)

EXAMPLES = [
    {"word": "happy", "antonym": "sad"},
    {"word": "tall", "antonym": "short", "note": "extra keys in an example are fine"},
]


def test_few_shot_text_prompt():
    prompt = FewShotPromptTemplate(
        examples=EXAMPLES,
        example_prompt=PromptTemplate("Word: {word}\nAntonym: {antonym}"),
        prefix="Give the antonym of every {kind}.",
        suffix="Word: {input}\nAntonym:",
    )
    assert prompt.input_variables == ["kind", "input"]
    assert prompt.format(kind="word", input="big") == (
        "Give the antonym of every word.\n\n"
        "Word: happy\nAntonym: sad\n\n"
        "Word: tall\nAntonym: short\n\n"
        "Word: big\nAntonym:"
    )


def test_example_values_with_braces_stay_literal():
    prompt = FewShotPromptTemplate(
        examples=[{"q": "format {x}", "a": '{"json": true}'}],
        example_prompt=PromptTemplate("{q} -> {a}"),
        suffix="{q}",
        example_separator="\n",
    )
    assert prompt.input_variables == ["q"]
    assert prompt.invoke("now").to_string() == 'format {x} -> {"json": true}\nnow'


def test_empty_prefix_and_examples_are_left_out():
    prompt = FewShotPromptTemplate(examples=[], example_prompt=PromptTemplate("{a}"), suffix="{q}")
    assert prompt.format(q="only") == "only"


def test_example_missing_a_variable_fails_at_build_time():
    with pytest.raises(PromptError, match=r"example 1 is missing variable\(s\) 'antonym'"):
        FewShotPromptTemplate(
            examples=[{"word": "a", "antonym": "b"}, {"word": "c"}],
            example_prompt=PromptTemplate("{word} {antonym}"),
            suffix="{input}",
        )


def test_few_shot_text_prompt_is_strict_and_partial_like_any_prompt():
    prompt = FewShotPromptTemplate(
        examples=EXAMPLES,
        example_prompt=PromptTemplate("{word}:{antonym}"),
        suffix="{a} {b}",
        example_separator=";",
    )
    with pytest.raises(PromptError, match="missing variable.*'b'"):
        prompt.invoke({"a": 1})
    assert prompt.partial(a="A").invoke("B").to_string() == "happy:sad;tall:short;A B"


def test_few_shot_text_prompt_needs_a_text_example_prompt():
    with pytest.raises(TypeError, match="FewShotChatMessagePromptTemplate"):
        FewShotPromptTemplate(
            examples=EXAMPLES,
            example_prompt=ChatPromptTemplate.from_template("{word}"),  # type: ignore[arg-type]
            suffix="{q}",
        )


def test_few_shot_chat_inside_a_chat_prompt():
    few_shot = FewShotChatMessagePromptTemplate(
        examples=[{"input": "2+2", "output": "4"}, {"input": "2+3", "output": "5"}],
        example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
    )
    assert few_shot.input_variables == []
    assert few_shot.invoke({}).to_messages() == [
        HumanMessage("2+2"),
        AIMessage("4"),
        HumanMessage("2+3"),
        AIMessage("5"),
    ]
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You do arithmetic."), few_shot, ("human", "{input}")]
    )
    assert prompt.input_variables == ["input"]
    assert prompt.invoke("7*6").to_messages() == [
        SystemMessage("You do arithmetic."),
        HumanMessage("2+2"),
        AIMessage("4"),
        HumanMessage("2+3"),
        AIMessage("5"),
        HumanMessage("7*6"),
    ]


def test_few_shot_chat_with_a_message_template_and_bad_examples():
    few_shot = FewShotChatMessagePromptTemplate(
        examples=[{"q": "a {b}"}],
        example_prompt=HumanMessagePromptTemplate.from_template("Q: {q}"),
    )
    assert few_shot.format_messages() == [HumanMessage("Q: a {b}")]
    with pytest.raises(PromptError, match="example 0 is missing"):
        FewShotChatMessagePromptTemplate(
            examples=[{"x": 1}],
            example_prompt=HumanMessagePromptTemplate.from_template("Q: {q}"),
        )
    with pytest.raises(PromptError, match="example 0 is a str"):
        FewShotChatMessagePromptTemplate(
            examples=["not a dict"],  # type: ignore[list-item]
            example_prompt=HumanMessagePromptTemplate.from_template("Q: {q}"),
        )
