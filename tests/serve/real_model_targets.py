"""A chain on the OpenAI-compatible endpoint the environment names (``OPENAI_BASE_URL``,
``MARU_MODEL``), for ``maru serve real_model_targets:chain`` in tests/serve/test_real_model.py."""

from __future__ import annotations

from maru.models import OpenAIChat
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate

prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a travel guide. Answer in one short sentence."), ("human", "What should I see in {city}?")]
)

chain = prompt | OpenAIChat(temperature=0, max_tokens=12) | StrOutputParser()
