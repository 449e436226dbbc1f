"""ChatPromptTemplate: entries, placeholders, literal messages, partials, composition, errors."""

from __future__ import annotations

import asyncio

import pytest

from maru.errors import PromptError
from maru.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, to_messages
from maru.prompts import (
    AIMessagePromptTemplate,
    ChatPromptTemplate,
    ChatPromptValue,
    HumanMessagePromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
    StringPromptValue,
    SystemMessagePromptTemplate,
)


@pytest.fixture
def qa_prompt():
    return ChatPromptTemplate.from_messages(
        [
            ("system", "You answer in {language}."),
            MessagesPlaceholder("history", optional=True),
            ("human", "{question}"),
        ]
    )


def test_from_messages_tuples_and_roles(qa_prompt):
    assert qa_prompt.kind == "prompt"
    assert qa_prompt.input_variables == ["language", "question"]
    assert qa_prompt.optional_variables == ["history"]
    value = qa_prompt.invoke({"language": "Korean", "question": "What is maru?"})
    assert isinstance(value, ChatPromptValue)
    assert value.to_messages() == [
        SystemMessage("You answer in Korean."),
        HumanMessage("What is maru?"),
    ]
    assert to_messages(value) == value.messages
    assert value.to_string() == "System: You answer in Korean.\nHuman: What is maru?"
    assert str(value) == value.to_string()


def test_role_aliases():
    prompt = ChatPromptTemplate.from_messages(
        [("developer", "d"), ("user", "u {x}"), ("assistant", "a"), ("ai", "b"), ("human", "h")]
    )
    assert prompt.format_messages(x=1) == [
        SystemMessage("d"),
        HumanMessage("u 1"),
        AIMessage("a"),
        AIMessage("b"),
        HumanMessage("h"),
    ]


def test_placeholder_takes_messages_tuples_dicts_and_strings(qa_prompt):
    history = [
        HumanMessage("hi"),
        ("ai", "hello"),
        {"role": "user", "content": "how are you?"},
        "plain text is a human message",
    ]
    messages = qa_prompt.format_messages(language="en", question="q", history=history)
    assert messages == [
        SystemMessage("You answer in en."),
        HumanMessage("hi"),
        AIMessage("hello"),
        HumanMessage("how are you?"),
        HumanMessage("plain text is a human message"),
        HumanMessage("q"),
    ]


def test_optional_placeholder_may_be_missing_or_none(qa_prompt):
    assert len(qa_prompt.format_messages(language="en", question="q")) == 2
    assert len(qa_prompt.format_messages(language="en", question="q", history=None)) == 2
    assert len(qa_prompt.format_messages(language="en", question="q", history=[])) == 2


def test_placeholder_tuple_is_optional():
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{history}"), ("human", "{q}")])
    assert prompt.input_variables == ["q"]
    assert prompt.optional_variables == ["history"]
    assert prompt.invoke("hi").to_messages() == [HumanMessage("hi")]  # single required variable
    assert prompt.invoke({"q": "x", "history": [("ai", "y")]}).to_messages() == [
        AIMessage("y"),
        HumanMessage("x"),
    ]


def test_required_placeholder_missing_is_an_error():
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    assert prompt.input_variables == ["history", "q"]
    with pytest.raises(PromptError, match=r"missing variable\(s\) 'history'"):
        prompt.invoke({"q": "x"})


def test_placeholder_n_messages_keeps_the_last_ones():
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("h", n_messages=2)])
    out = prompt.invoke({"h": [("human", "1"), ("ai", "2"), ("human", "3")]}).to_messages()
    assert out == [AIMessage("2"), HumanMessage("3")]
    with pytest.raises(ValueError):
        MessagesPlaceholder("h", n_messages=0)


def test_placeholder_only_prompt_takes_the_list_bare():
    prompt = ChatPromptTemplate.from_messages([("system", "s"), ("placeholder", "{messages}")])
    assert prompt.invoke([("human", "hi")]).to_messages() == [
        SystemMessage("s"),
        HumanMessage("hi"),
    ]


def test_placeholder_accepts_a_prompt_value_or_one_message():
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("m")])
    inner = ChatPromptTemplate.from_messages([("human", "a")]).invoke({})
    assert prompt.invoke({"m": inner}).to_messages() == [HumanMessage("a")]
    assert prompt.invoke({"m": AIMessage("x")}).to_messages() == [AIMessage("x")]


def test_placeholder_refuses_a_string_and_bad_items():
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    with pytest.raises(PromptError, match="'history' is a message placeholder.*got str"):
        prompt.invoke({"history": "hello", "q": "x"})
    with pytest.raises(PromptError, match="'history' holds an item that is not a message"):
        prompt.invoke({"history": [("robot", "beep")], "q": "x"})


def test_literal_messages_are_not_templates():
    prompt = ChatPromptTemplate.from_messages(
        [SystemMessage("Reply with {json} braces"), ("human", "{q}")]
    )
    assert prompt.input_variables == ["q"]
    assert prompt.format_messages(q="x")[0] == SystemMessage("Reply with {json} braces")
    tool = ToolMessage("42", tool_call_id="c1")
    assert ChatPromptTemplate.from_messages([tool]).format_messages() == [tool]


def test_message_prompt_templates():
    prompt = ChatPromptTemplate.from_messages(
        [
            SystemMessagePromptTemplate.from_template("sys {a}"),
            HumanMessagePromptTemplate.from_template("hum {b}"),
            AIMessagePromptTemplate.from_template("ai {c}"),
        ]
    )
    assert prompt.input_variables == ["a", "b", "c"]
    assert prompt.format_messages(a=1, b=2, c=3) == [
        SystemMessage("sys 1"),
        HumanMessage("hum 2"),
        AIMessage("ai 3"),
    ]
    one = HumanMessagePromptTemplate.from_template("hi {name}")
    assert one.input_variables == ["name"]
    assert one.format(name="Ann") == HumanMessage("hi Ann")
    with pytest.raises(PromptError, match="'name'"):
        one.format()


def test_message_template_with_name_and_partials():
    tmpl = HumanMessagePromptTemplate(
        "{greet} {who}", partial_variables={"greet": "Hi"}, name="bob"
    )
    assert tmpl.input_variables == ["who"]
    assert tmpl.format(who="you") == HumanMessage("Hi you", name="bob")
    prompt = ChatPromptTemplate.from_messages([tmpl])
    assert prompt.input_variables == ["who"]
    assert prompt.invoke("there").to_messages() == [HumanMessage("Hi there", name="bob")]


def test_strings_dicts_and_text_prompts_as_entries():
    prompt = ChatPromptTemplate.from_messages(
        [
            {"role": "system", "content": "be {tone}"},
            "plain {q}",
            PromptTemplate("{x} and {y}").partial(y="Y"),
        ]
    )
    assert prompt.input_variables == ["tone", "q", "x"]
    assert prompt.format_messages(tone="kind", q="Q", x="X") == [
        SystemMessage("be kind"),
        HumanMessage("plain Q"),
        HumanMessage("X and Y"),
    ]


def test_dict_with_more_keys_is_a_literal_message():
    prompt = ChatPromptTemplate.from_messages(
        [{"role": "tool", "content": "{not a template}", "tool_call_id": "t1"}]
    )
    assert prompt.format_messages() == [ToolMessage("{not a template}", tool_call_id="t1")]


def test_content_parts_are_templated():
    prompt = ChatPromptTemplate.from_messages(
        [
            (
                "human",
                [
                    {"type": "text", "text": "Describe {what}"},
                    {"type": "image_url", "image_url": {"url": "{image_url}"}},
                ],
            )
        ]
    )
    assert prompt.input_variables == ["what", "image_url"]
    (message,) = prompt.format_messages(what="this", image_url="https://x/y.png")
    assert message.content == [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    assert message.text == "Describe this"


def test_from_template_is_one_human_message():
    prompt = ChatPromptTemplate.from_template("Tell me about {topic}")
    assert prompt.invoke("maru").to_messages() == [HumanMessage("Tell me about maru")]
    assert prompt.format(topic="x") == "Human: Tell me about x"


def test_unknown_role_and_bad_entries():
    with pytest.raises(PromptError, match="unknown role 'robot'"):
        ChatPromptTemplate.from_messages([("robot", "beep")])
    with pytest.raises(PromptError, match="unknown role 'tool'"):
        ChatPromptTemplate.from_messages([("tool", "x")])
    with pytest.raises(PromptError, match="placeholder entry is written"):
        ChatPromptTemplate.from_messages([("placeholder", "history")])
    with pytest.raises(PromptError, match="placeholder entry is written"):
        ChatPromptTemplate.from_messages([("placeholder", "{a} {b}")])
    with pytest.raises(TypeError, match="cannot use int"):
        ChatPromptTemplate.from_messages([3])
    with pytest.raises(TypeError, match="list of entries"):
        ChatPromptTemplate("just a string")  # type: ignore[arg-type]
    with pytest.raises(PromptError, match="never closed"):
        ChatPromptTemplate.from_messages([("system", "{oops")])
    with pytest.raises(PromptError, match="attribute or index access"):
        ChatPromptTemplate.from_messages([("human", "{q.__class__}")])


def test_missing_and_extra_variables_are_named(qa_prompt):
    with pytest.raises(PromptError) as info:
        qa_prompt.invoke({"language": "en"})
    message = str(info.value)
    assert "ChatPromptTemplate is missing variable(s) 'question'" in message
    assert "expects 'language', 'question' (optional: 'history')" in message
    with pytest.raises(PromptError, match="unexpected variable.*'topic'"):
        qa_prompt.invoke({"language": "en", "question": "q", "topic": "t"})
    lenient = ChatPromptTemplate.from_messages([("human", "{q}")], allow_extra=True)
    assert lenient.invoke({"q": "x", "other": 1}).to_messages() == [HumanMessage("x")]


def test_partial_with_callable(qa_prompt):
    calls = []

    def language():
        calls.append(1)
        return "Korean"

    prompt = qa_prompt.partial(language=language)
    assert prompt.input_variables == ["question"]
    assert prompt.invoke("hi").to_messages()[0] == SystemMessage("You answer in Korean.")
    prompt.invoke("again")
    assert len(calls) == 2
    assert qa_prompt.input_variables == ["language", "question"]  # original unchanged


def test_partial_of_an_optional_placeholder():
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
    filled = prompt.partial(h=[("ai", "earlier")])
    assert filled.optional_variables == []
    assert filled.invoke("now").to_messages() == [AIMessage("earlier"), HumanMessage("now")]


def test_composition_with_plus():
    base = ChatPromptTemplate.from_messages([("system", "You are {role}.")])
    full = base + ("human", "{q}")
    assert isinstance(full, ChatPromptTemplate)
    assert full.input_variables == ["role", "q"]
    more = full + AIMessage("ok") + "then {next}" + MessagesPlaceholder("tail", optional=True)
    assert more.format_messages(role="r", q="q", next="n", tail=[("human", "t")]) == [
        SystemMessage("You are r."),
        HumanMessage("q"),
        AIMessage("ok"),
        HumanMessage("then n"),
        HumanMessage("t"),
    ]
    both = base.partial(role="bot") + ChatPromptTemplate.from_template("{q}")
    assert both.input_variables == ["q"]
    assert both.invoke("x").to_messages() == [SystemMessage("You are bot."), HumanMessage("x")]
    with_list = base + [("human", "a"), ("ai", "b")]
    assert len(with_list.messages) == 3
    with_text_prompt = base + PromptTemplate("{z}")
    assert with_text_prompt.format_messages(role="r", z="Z")[-1] == HumanMessage("Z")


def test_composition_from_the_left():
    prompt = ("system", "first") + ChatPromptTemplate.from_template("{q}")
    assert prompt.format_messages(q="x") == [SystemMessage("first"), HumanMessage("x")]
    prompt2 = SystemMessage("s") + ChatPromptTemplate.from_template("{q}")
    assert prompt2.format_messages(q="x")[0] == SystemMessage("s")
    prompt3 = SystemMessagePromptTemplate.from_template("{a}") + ("human", "{b}")
    assert prompt3.input_variables == ["a", "b"]
    with pytest.raises(TypeError):
        ChatPromptTemplate.from_template("{q}") + 3  # type: ignore[operator]


def test_nested_chat_prompt_is_inlined_with_its_partials():
    inner = ChatPromptTemplate.from_messages([("system", "{a}")]).partial(a="A")
    outer = ChatPromptTemplate.from_messages([inner, ("human", "{b}")])
    assert outer.input_variables == ["b"]
    assert outer.invoke("B").to_messages() == [SystemMessage("A"), HumanMessage("B")]


def test_async_stream_and_batch(qa_prompt):
    async def main():
        value = await qa_prompt.ainvoke({"language": "en", "question": "q"})
        chunks = [c async for c in qa_prompt.astream({"language": "en", "question": "q"})]
        batch = await qa_prompt.abatch(
            [{"language": "en", "question": "1"}, {"language": "ko", "question": "2"}]
        )
        return value, chunks, batch

    value, chunks, batch = asyncio.run(main())
    assert chunks == [value]
    assert [v.to_messages()[-1].text for v in batch] == ["1", "2"]


def test_string_prompt_value_and_chat_prompt_value_equality():
    assert StringPromptValue("a") == StringPromptValue("a")
    assert StringPromptValue("a") != StringPromptValue("b")
    assert ChatPromptValue([HumanMessage("a")]) == ChatPromptValue([HumanMessage("a")])
    assert "HumanMessage" in repr(ChatPromptValue([HumanMessage("a")]))


def test_transcript_labels():
    value = ChatPromptValue(
        [SystemMessage("s"), HumanMessage("h"), AIMessage("a"), ToolMessage("t", tool_call_id="1")]
    )
    assert value.to_string() == "System: s\nHuman: h\nAI: a\nTool: t"


def test_each_invoke_returns_fresh_lists(qa_prompt):
    a = qa_prompt.invoke({"language": "en", "question": "q"})
    a.messages.append(HumanMessage("mutated"))
    b = qa_prompt.invoke({"language": "en", "question": "q"})
    assert len(b.messages) == 2
    assert a.to_messages() is not a.messages
