"""A travel guide: chat messages, a chat prompt template, a model and a string parser.

The parts that ``maru demo`` and ``examples/chat_travel_guide.py`` share: a conversation written as
messages, a ``ChatPromptTemplate`` with a history placeholder, ``prompt | model | StrOutputParser()``,
and ``ScriptedChatModel``, a scripted test double that plays back the canned answers below, in
order. It is not an LLM; it keeps the demo offline.
"""

from __future__ import annotations

from typing import Any

from maru.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate, MessagesPlaceholder

SYSTEM = "You are a friendly, practical travel guide. Answer in two or three short sentences."

EXAMPLE_INPUTS: list[dict[str, Any]] = [
    {
        "city": "Busan",
        "history": [],
        "question": "I have two days and I love food and the sea. What should I do?",
    },
]

# What the scripted test double answers, one reply per model call, in order.
SCRIPTED_REPLIES = [
    "Head to Gwangjang Market for bindaetteok and mayak gimbap, then walk along the "
    "Cheonggyecheon stream while it is lit up at night.",
    "Spend day one at Jagalchi Fish Market and on Haeundae Beach, and day two in Gamcheon "
    "Culture Village. Eat dwaeji gukbap for lunch and fresh hoe by the water in the evening.",
    "Gwangalli Beach: watch the sun go down, then stay for the lights on the Gwangan Bridge. "
    "The seafood restaurants along the beach stay open late.",
]

SCRIPTED_LABEL = "ScriptedChatModel (a scripted test double replaying canned answers, not a real LLM)"


def conversation() -> list[BaseMessage]:
    """Part 1: a conversation as messages. The AI message is an earlier answer the model sees."""
    return [
        SystemMessage(SYSTEM),
        HumanMessage("I have one day in Seoul. Where should I start?"),
        AIMessage("Start early at Gyeongbokgung Palace, then wander through Bukchon Hanok Village."),
        HumanMessage("And where should I go in the evening?"),
    ]


def travel_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [
            ("system", SYSTEM + " The traveller is visiting {city}."),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )


def build_chain(model: Any) -> Any:
    """``prompt | model | parser``: a dict with city, history and question in, the answer text out."""
    return travel_prompt() | model | StrOutputParser()


def scripted_model() -> Any:
    from maru.models import ScriptedChatModel

    return ScriptedChatModel(replies=SCRIPTED_REPLIES)
