"""A travel guide: chat messages, a chat prompt template, a model and a string parser.

    python examples/chat_travel_guide.py

1. A conversation written as messages (system, human, AI, human) goes straight to the model.
2. A ``ChatPromptTemplate`` with a history placeholder fills in the city and the question;
   ``prompt | model | StrOutputParser()`` turns a dict into the guide's answer as text.
3. The same chain streams a follow-up question, with the first exchange as history.

The messages, the prompt and the chain are in ``maru/demo/travel_guide.py`` (``maru demo`` runs
them too, from an installed package); this script adds the choice of model and prints each part.

Which model answers (``maru.models.default_chat_model``):

- with ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set, that endpoint through ``OpenAIChat``
  (model name from ``MARU_MODEL``; any OpenAI-compatible endpoint: OpenAI, Gemini, Ollama, vLLM …);
- otherwise the bundled SmolLM2-135M-Instruct, run in process by llama.cpp: offline, no key;
- ``--scripted``: ``ScriptedChatModel``, a scripted test double that plays back canned answers.
"""

from __future__ import annotations

import sys
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
    """The configured endpoint, else the local model (or the scripted double with --scripted)."""
    if "--scripted" in sys.argv[1:]:
        return scripted_model(), SCRIPTED_LABEL
    from maru.models import default_chat_model, describe_model

    model = default_chat_model(max_tokens=96)
    return model, describe_model(model)


def main() -> None:
    model, label = make_model()
    print(f"model: {label}")

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
