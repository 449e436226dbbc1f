"""Runnables that tests/serve serves, in process and through ``maru serve serve_targets:NAME``
(run with this folder as the working directory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from maru import runnable
from maru.messages import BaseMessage
from maru.models import ScriptedChatModel
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate, MessagesPlaceholder

REPLY = "Gyeongbokgung in the morning, then Bukchon and Gwangjang Market."


# ----------------------------------------------------------------------------- a typed chain
class Question(BaseModel):
    text: str
    repeat: int = 1


class Answer(BaseModel):
    text: str
    words: int


def ask(question: Question) -> str:
    return " ".join([question.text] * question.repeat)


def answer(text: str) -> Answer:
    return Answer(text=text.upper(), words=len(text.split()))


typed_chain = runnable(ask) | answer


# ----------------------------------------------------------------------------- prompt | model | parser
def travel_chain(replies: list[str] | None = None, *, io_bound: bool = False) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a travel guide. Answer in the style: {style}."),
            MessagesPlaceholder("history", optional=True),
            ("human", "What should I see in {city}?"),
        ]
    )
    model = ScriptedChatModel(replies=replies or [REPLY], cycle=True, io_bound=io_bound)
    return prompt | model | StrOutputParser()


# ----------------------------------------------------------------------------- a knowledge base
KB_REPLY = "Gyeongbokgung was first built in 1395 [1]."


def knowledge_base(folder: Path) -> Any:
    """A ``KnowledgeBase`` over two small files in ``folder``, answering with a scripted model."""
    from maru.rag.knowledge import KnowledgeBase

    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "palaces.md").write_text("Gyeongbokgung was first built in 1395 by the Joseon dynasty.", encoding="utf-8")
    (docs / "food.txt").write_text("Jagalchi Market in Busan is the largest fish market in Korea.", encoding="utf-8")
    kb = KnowledgeBase(folder / "kb", model=ScriptedChatModel([KB_REPLY], cycle=True), k=1)
    kb.ingest([docs])
    return kb


# ----------------------------------------------------------------------------- small steps
def count_messages(messages: list[BaseMessage]) -> dict[str, Any]:
    """Proves that message dicts arrive as messages."""
    return {
        "count": len(messages),
        "types": [type(m).__name__ for m in messages],
        "last": messages[-1].text if messages else None,
    }


def picky(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n * 10


def leaky(text: str) -> str:
    raise RuntimeError(
        "upstream refused the call: invalid key sk-proj-4fT9xQ2LmZ8vB1nC7kD3 "
        "(sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature)"
    )


def punctuate(text: str, mark: str = "!") -> str:
    return text + mark


@runnable
def two_then_fail(chunks: Iterator[str]) -> Iterator[str]:
    for text in chunks:
        yield f"{text}-1"
        yield f"{text}-2"
        raise RuntimeError("stream broke; api_key=abcd1234efgh5678 was rejected")


@runnable
async def slow_stream(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """Yields ``n`` chunks. After the first it waits until the file ``release`` exists (at most
    60 s), so a test can act while the stream is certainly still in flight."""
    async for request in chunks:
        n, release = int(request["n"]), Path(request["release"])
        for i in range(n):
            if i == 1:
                deadline = time.monotonic() + 60
                while not release.exists() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            yield f"chunk-{i} "
            await asyncio.sleep(0.01)


FAKE_PROVIDER_KEY = "sk-proj-" + "Wv4" * 12


class _ProviderRefused(Exception):
    """Shaped like openai.AuthenticationError: the provider echoes the key it was sent."""


def _call_provider(text: str) -> str:
    try:
        raise _ProviderRefused(f"Error code: 401 - Incorrect API key provided: {FAKE_PROVIDER_KEY}")
    except _ProviderRefused as exc:
        raise RuntimeError(f"the model call failed (Authorization: Bearer {FAKE_PROVIDER_KEY})") from exc


configured_provider = runnable(_call_provider, name="provider").with_config(
    metadata={"api_key": FAKE_PROVIDER_KEY, "db": "postgresql://svc:pw-Wv4Wv4@db.internal/app"},
    tags=["tenant-7"],
)
