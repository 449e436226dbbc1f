"""A travel guide: chat messages, a chat prompt template, a model and a string parser.

    python examples/chat_travel_guide.py

1. A conversation written as messages (system, human, AI, human) goes straight to the model.
2. A ``ChatPromptTemplate`` with a history placeholder fills in the city and the question;
   ``prompt | model | StrOutputParser()`` turns a dict into the guide's answer as text.
3. The same chain streams a follow-up question, with the first exchange as history.

The messages, the prompt and the chain are in ``maru/demo/travel_guide.py`` (``maru demo`` runs
them too, from an installed package); this script adds the choice of model and prints each part.

Which model answers:

- with ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set, a real one through ``OpenAIChat``
  (model name from ``MARU_MODEL``; any OpenAI-compatible endpoint: OpenAI, Gemini, Ollama, vLLM …);
- otherwise ``ScriptedChatModel``: a scripted test double that plays back canned answers, in
  order. It is not an LLM; it lets this program run offline, and the output says so.
"""

from __future__ import annotations

import os
from typing import Any

from maru.demo.travel_guide import (
    EXAMPLE_INPUTS,
    SCRIPTED_LABEL,
    build_chain,
    conversation,
    scripted_model,
)
from maru.messages import AIMessage, HumanMessage


def make_model() -> tuple[Any, str]:
    """A real model when an endpoint is configured, else the scripted test double; and a label."""
    api_key = os.environ.get("OPENAI_API_KEY")
    base_url = os.environ.get("OPENAI_BASE_URL")
    if api_key or base_url:
        from maru.models import OpenAIChat

        model = OpenAIChat(model=os.environ.get("MARU_MODEL"), base_url=base_url, api_key=api_key)
        return model, f"OpenAIChat ({model.model_name or 'default model'}{' at ' + base_url if base_url else ''})"
    return scripted_model(), SCRIPTED_LABEL


def main() -> None:
    model, label = make_model()
    print(f"model: {label}")
    if model.__class__.__name__ == "ScriptedChatModel":
        print("       set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) to ask a real model.")

    print("\n1. messages -> model")
    messages = conversation()
    for message in messages:
        print(f"   {message.type:>6}: {message.text}")
    reply = model.invoke(messages)
    print(f"   {'ai':>6}: {reply.text}")

    print("\n2. prompt | model | StrOutputParser  (invoke)")
    chain = build_chain(model)
    first = EXAMPLE_INPUTS[0]
    print(f"   question: {first['question']}")
    answer = chain.invoke(first)
    print(f"   answer:   {answer}")

    print("\n3. the same chain, streamed, with the first exchange as history")
    follow_up = {
        "city": first["city"],
        "history": [HumanMessage(first["question"]), AIMessage(answer)],
        "question": "Which of those is best at sunset?",
    }
    print(f"   question: {follow_up['question']}")
    print("   answer:   ", end="", flush=True)
    for piece in chain.stream(follow_up):
        print(piece, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
