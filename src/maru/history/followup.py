"""Follow-up questions: rewrite one that leans on the conversation into a standalone question, and
retrieve with the rewrite ("그 근처에 맛있는 식당은?" after a question about Seoul → a question that
names Seoul)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..messages import BaseMessage, to_messages
from ..prompts import ChatPromptTemplate, MessagesPlaceholder

if TYPE_CHECKING:
    from ..models.base import ChatModel
    from ..rag.documents import Document

__all__ = ["HistoryAwareRetriever", "StandaloneQuestion", "history_aware_retriever"]

_REWRITE = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Rewrite the user's last question so that it can be understood without the conversation: "
            "replace pronouns and references (there, that, it, 그, 거기, 그 근처) with what they refer to. "
            "Keep the user's language. If the question already stands alone, return it unchanged. "
            "Reply with the question only.",
        ),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)


class StandaloneQuestion(Runnable[dict[str, Any], str]):
    """``{"question", "history"}`` → a standalone question. With no history the question is returned
    as is and the model is not called."""

    io_bound = True

    def __init__(self, model: ChatModel) -> None:
        self.model = model

    def _invoke(self, input: dict[str, Any], config: RunConfig | None = None, **kwargs: Any) -> str:
        question = input["question"]
        history: list[BaseMessage] = to_messages(input.get("history") or [])
        if not history:
            return question
        reply = self.model.invoke(_REWRITE.format_messages(history=history, question=question), config)
        text = str(reply.content).strip().strip('"').strip()
        return text or question


class HistoryAwareRetriever(Runnable[dict[str, Any], "list[Document]"]):
    """Retrieve for ``{"question", "history"}``: the question is made standalone first."""

    kind = "retriever"
    io_bound = True

    def __init__(self, model: ChatModel, retriever: Runnable[str, list[Document]]) -> None:
        self.rewrite = StandaloneQuestion(model)
        self.retriever = retriever

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> list[Document]:
        if isinstance(input, str):
            input = {"question": input}
        return self.retriever.invoke(self.rewrite.invoke(input, config), config)


def history_aware_retriever(model: ChatModel, retriever: Runnable[str, list[Document]]) -> HistoryAwareRetriever:
    return HistoryAwareRetriever(model, retriever)
