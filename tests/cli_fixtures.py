"""Targets for ``maru run`` in tests/test_cli.py (imported by the CLI as ``cli_fixtures:…``)."""

from __future__ import annotations

from collections.abc import Iterator

from maru import assign, runnable
from maru.messages import AIMessage, AIMessageChunk


def shout(text: str) -> str:
    """A plain function: the CLI coerces it into a step."""
    return text.upper() + "!"


def count_words(data: dict) -> dict:
    return {"words": len(data["text"].split())}


# A chain: a dict input in, a dict out.
chain = runnable(count_words) | assign(long=lambda d: d["words"] > 3)


@runnable
def spell(chunks: Iterator[str]) -> Iterator[str]:
    """A streaming step: yields its (gathered) input one character at a time."""
    for text in chunks:
        yield from text


def reply(text: str) -> AIMessage:
    return AIMessage(content=f"you said {text}")


@runnable
def stream_message(chunks: Iterator[str]) -> Iterator[AIMessageChunk]:
    for text in chunks:
        for word in text.split():
            yield AIMessageChunk(content=word + " ")


def structured(_: object) -> dict:
    """Returns what JSON cannot hold as is: a set and a message."""
    return {"tags": {"a"}, "message": AIMessage(content="hi")}


def broken(_: object) -> None:
    raise RuntimeError("this step always fails")


not_callable = 42


def read_text(path: str) -> str:
    """Reads a file the user names: a missing one is an OSError from the user's input."""
    from pathlib import Path

    return Path(path).read_text(encoding="utf-8")


def refuse(_: object) -> None:
    """Raises one of maru's own errors, as a library step would."""
    from maru.errors import IndexingError

    raise IndexingError("the record manager and the store disagree: run index() with cleanup='full'")


def _travel_prompt() -> object:
    from maru.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([("human", "What should I see in {city} in {season}?")])


travel_prompt = _travel_prompt()
