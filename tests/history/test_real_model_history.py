"""Follow-up rewriting and ``with_history`` with the bundled SmolLM2-135M in process.
Assertions are on structure and protocol, never on wording."""

from __future__ import annotations

import pytest

from maru.history import InMemoryHistory, StandaloneQuestion, with_history
from maru.messages import AIMessage, HumanMessage
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate, MessagesPlaceholder

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def model(local_model):
    return local_model(max_tokens=32, n_ctx=2048)


def test_follow_up_is_rewritten_into_a_standalone_question(model):
    history = [HumanMessage("What is the capital of France?"), AIMessage("Paris.")]
    question = StandaloneQuestion(model).invoke({"question": "How big is it?", "history": history})
    assert isinstance(question, str) and question.strip()


def test_with_history_keeps_both_turns(model):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one short sentence."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    store = InMemoryHistory()
    chat = with_history(prompt | model | StrOutputParser(), store, input_key="question")
    config = {"configurable": {"session_id": "s"}}
    first = chat.invoke({"question": "Name a fruit."}, config)
    second = chat.invoke({"question": "What colour is it?"}, config)
    assert isinstance(first, str) and isinstance(second, str) and second.strip()
    stored = store.get("s")
    assert [type(m).__name__ for m in stored] == ["HumanMessage", "AIMessage"] * 2
    assert [m.content for m in stored] == ["Name a fruit.", first, "What colour is it?", second]
