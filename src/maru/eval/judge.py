"""Model-judged faithfulness and relevance, with any chat model (the local model by default).

The judge answers in a fixed schema — its reasoning first, then a score from 1 to 5 — through
the model's structured output (constrained decoding for the local model, JSON schema or a forced
tool call for endpoints), so even a 135M model's reply parses. Scores are mapped to 0..1
(``(score - 1) / 4``). A reply that still does not parse is kept as a judgement without a score,
its reasoning saying why, rather than stopping the experiment.

- **faithfulness**: is every claim of the answer stated in the passages it was written from?
- **relevance**: does the answer address the question?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import OutputParserError

__all__ = ["Judge", "Judgement"]

_FAITHFULNESS = (
    "You check answers for faithfulness. Read the passages, then the answer. Score 5 when every claim "
    "of the answer is stated in the passages, 1 when the answer makes claims the passages do not "
    "support. First give your reasoning in one or two sentences, then the score."
)
_RELEVANCE = (
    "You check whether an answer addresses its question. Score 5 when it answers exactly what was "
    "asked, 1 when it is about something else. First give your reasoning in one or two sentences, "
    "then the score."
)
_MAX_PASSAGE_CHARS = 1500
"""Each passage as the judge sees it (the local model's context is 4096 tokens)."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A score in 0..1 (``None`` when the reply could not be read) and the judge's reasoning."""

    score: float | None
    reasoning: str
    model: str


def _verdict_schema() -> Any:
    from typing import Literal

    from pydantic import BaseModel, Field

    class Verdict(BaseModel):
        """A judgement: why, then a score from 1 (worst) to 5 (best)."""

        reasoning: str = Field(description="one or two sentences", max_length=400)
        score: Literal[1, 2, 3, 4, 5]  # an enum: a grammar holds the local model to it (a range would not)

    return Verdict


class Judge:
    """Scores answers with ``model`` (a chat model; default :func:`maru.models.default_chat_model`,
    the bundled local model when no endpoint is configured)."""

    def __init__(self, model: Any = None) -> None:
        if model is None:
            from ..models import default_chat_model

            model = default_chat_model()
        self.model = model
        self.name = str(getattr(model, "model_name", "") or type(model).__name__)
        self._structured = model.with_structured_output(_verdict_schema())

    def faithfulness(self, question: str, answer: str, passages: Sequence[str]) -> Judgement:
        shown = "\n\n".join(f"[{n}] {p[:_MAX_PASSAGE_CHARS]}" for n, p in enumerate(passages, 1))
        return self._judge(_FAITHFULNESS, f"Passages:\n{shown}\n\nQuestion: {question}\n\nAnswer: {answer}")

    def relevance(self, question: str, answer: str) -> Judgement:
        return self._judge(_RELEVANCE, f"Question: {question}\n\nAnswer: {answer}")

    def _judge(self, system: str, human: str) -> Judgement:
        from ..messages import HumanMessage, SystemMessage

        try:
            verdict = self._structured.invoke([SystemMessage(system), HumanMessage(human)])
        except OutputParserError as exc:
            return Judgement(None, f"the judge's reply could not be read: {exc.reason}", self.name)
        return Judgement((verdict.score - 1) / 4, verdict.reasoning.strip(), self.name)

    def config(self) -> dict[str, str]:
        return {"judge": self.name}
