"""A LangChain runnable inside a maru ``|`` is one step: it runs through its own ``invoke`` /
``stream``, gets LangChain messages for maru ones, hands its output on (maru's model and parsers
read LangChain messages), and shows in events and traces as one run."""

from __future__ import annotations

import asyncio

import pytest

from maru import passthrough, runnable
from maru.core import coerce, listen
from maru.messages import AIMessage, HumanMessage, SystemMessage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate

lc_runnables = pytest.importorskip("langchain_core.runnables")
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser as LCStrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate as LCChatPromptTemplate  # noqa: E402


def test_a_langchain_lambda_is_one_step_of_a_maru_chain():
    chain = runnable(lambda x: x + 1) | lc_runnables.RunnableLambda(lambda x: x * 10) | (lambda x: x - 1)
    assert chain.invoke(1) == 19
    assert list(chain.stream(1)) == [19]
    assert asyncio.run(chain.ainvoke(1)) == 19
    assert chain.batch([1, 2]) == [19, 29]


def test_maru_prompt_into_a_langchain_model_into_a_maru_parser():
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "Capital of {country}?")])
    lc_model = FakeListChatModel(responses=["Seoul."])
    chain = prompt | lc_model | StrOutputParser()
    assert chain.invoke({"country": "Korea"}) == "Seoul."
    assert "".join(chain.stream({"country": "Korea"})) == "Seoul."


def test_langchain_prompt_into_a_maru_model_and_a_langchain_parser():
    lc_prompt = LCChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    model = ScriptedChatModel(["Busan."])
    chain = {"q": passthrough()} | coerce(lc_prompt) | model | LCStrOutputParser()
    assert chain.invoke("Port city?") == "Busan."
    sent = model.calls[0].messages
    assert [type(m) for m in sent] == [SystemMessage, HumanMessage] and sent[1].content == "Port city?"


def test_maru_messages_reach_a_langchain_step_as_langchain_messages():
    seen = []

    def record(messages):
        seen.extend(messages)
        return messages[-1].content

    chain = runnable(lambda q: [SystemMessage("s"), HumanMessage(q), AIMessage("a")]) | lc_runnables.RunnableLambda(record)
    assert chain.invoke("q") == "a"
    assert [type(m).__module__.split(".")[0] for m in seen] == ["langchain_core"] * 3
    assert [m.type for m in seen] == ["system", "human", "ai"]


def test_a_langchain_step_is_one_run_in_events():
    lc_model = FakeListChatModel(responses=["Seoul."])
    chain = runnable(lambda q: q, name="ask") | lc_model
    events = []
    with listen(events.append):
        chain.invoke("Capital?")
    names = [(e.phase, e.name) for e in events if e.phase in ("start", "end")]
    assert ("start", "FakeListChatModel") in names and ("end", "FakeListChatModel") in names
    assert len(names) == 6  # the sequence, ask, the LangChain model: nothing from inside LangChain


def test_a_langchain_step_gets_the_callers_config():
    got = []
    step = lc_runnables.RunnableLambda(lambda x, config: got.append(config["tags"]) or x)
    (runnable(lambda x: x) | step).invoke(1, {"tags": ["mine"]})
    assert "mine" in got[0]
