"""Example selectors: which few-shot examples to show for a given input.

A fixed list of examples wastes tokens on irrelevant ones and cannot grow past the context window.
A selector picks per input: the most similar examples (embeddings, in memory: a few hundred examples
need no vector database), a diverse similar set (MMR), or as many as fit a token budget.

Every selector has ``select(input_variables) -> list[dict]`` and ``add_example(example)``; the
result is a plain list of example dicts, what :class:`~maru.prompts.few_shot.FewShotPromptTemplate`
and :class:`~maru.prompts.few_shot.FewShotChatMessagePromptTemplate` take as ``examples``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PromptError

if TYPE_CHECKING:
    import numpy as np

    from ..models.embeddings import Embeddings
    from .base import BasePromptTemplate

__all__ = [
    "ExampleSelector",
    "LengthBasedSelector",
    "MMRSelector",
    "SemanticSimilaritySelector",
]


class ExampleSelector(ABC):
    """Chooses examples for an input."""

    @abstractmethod
    def select(self, input_variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The examples to show for these input variables, in prompt order."""

    @abstractmethod
    def add_example(self, example: Mapping[str, Any]) -> None:
        """Make ``example`` available to later selections."""

    # LangChain's names for the same calls.
    def select_examples(self, input_variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.select(input_variables)


def _check_example(example: Any) -> dict[str, Any]:
    if not isinstance(example, Mapping):
        raise PromptError(f"an example is a dict of variables, got {type(example).__name__}")
    return dict(example)


class _EmbeddingSelector(ExampleSelector):
    """Examples embedded once (as the text of their ``input_keys``), kept as a unit-row matrix."""

    def __init__(
        self,
        examples: Sequence[Mapping[str, Any]],
        embeddings: Embeddings,
        k: int = 4,
        input_keys: Sequence[str] | None = None,
    ) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.embeddings, self.k = embeddings, k
        self.input_keys = list(input_keys) if input_keys is not None else None
        self.examples: list[dict[str, Any]] = []
        self._matrix: Any = None
        self._add([_check_example(e) for e in examples])

    def _text(self, values: Mapping[str, Any], what: str) -> str:
        keys = self.input_keys if self.input_keys is not None else sorted(values)
        missing = [k for k in keys if k not in values]
        if missing:
            raise PromptError(
                f"{what} lacks key(s) {missing} named in input_keys={self.input_keys}; "
                f"it has {sorted(values)}"
            )
        return " ".join(str(values[k]) for k in keys)

    @staticmethod
    def _unit(m: np.ndarray) -> np.ndarray:
        import numpy as np

        norms = np.linalg.norm(m, axis=-1, keepdims=True)
        return m / np.where(norms == 0, 1, norms)

    def _add(self, examples: list[dict[str, Any]]) -> None:
        import numpy as np

        if not examples:
            return
        texts = [self._text(e, f"example {e!r:.60}") for e in examples]
        vecs = self._unit(np.asarray(self.embeddings.embed_array(texts), dtype=np.float32))
        self._matrix = vecs if self._matrix is None else np.vstack([self._matrix, vecs])
        self.examples.extend(examples)

    def add_example(self, example: Mapping[str, Any]) -> None:
        self._add([_check_example(example)])

    def _query(self, input_variables: Mapping[str, Any]) -> np.ndarray:
        import numpy as np

        vec = self.embeddings.embed_query(self._text(input_variables, "the input"))
        return self._unit(np.asarray(vec, dtype=np.float32))


class SemanticSimilaritySelector(_EmbeddingSelector):
    """The ``k`` examples most similar to the input (cosine over the text of ``input_keys``; all
    keys when ``None``: pass the input keys when examples also hold outputs). Most similar first,
    or last with ``most_similar_last=True`` (nearest the question in the prompt)."""

    def __init__(
        self,
        examples: Sequence[Mapping[str, Any]],
        embeddings: Embeddings,
        k: int = 4,
        input_keys: Sequence[str] | None = None,
        *,
        most_similar_last: bool = False,
    ) -> None:
        super().__init__(examples, embeddings, k, input_keys)
        self.most_similar_last = most_similar_last

    def select(self, input_variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        import numpy as np

        if self._matrix is None:
            return []
        sims = self._matrix @ self._query(input_variables)
        order = np.argsort(-sims, kind="stable")[: self.k]
        picked = [dict(self.examples[int(i)]) for i in order]
        return picked[::-1] if self.most_similar_last else picked


class MMRSelector(_EmbeddingSelector):
    """``k`` examples by maximal marginal relevance among the ``fetch_k`` most similar: similar to
    the input but not to each other (``lambda_mult`` 1 = pure similarity, 0 = pure diversity)."""

    def __init__(
        self,
        examples: Sequence[Mapping[str, Any]],
        embeddings: Embeddings,
        k: int = 4,
        input_keys: Sequence[str] | None = None,
        *,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
    ) -> None:
        if not 0 <= lambda_mult <= 1:
            raise ValueError(f"lambda_mult must be within [0, 1], got {lambda_mult}")
        super().__init__(examples, embeddings, k, input_keys)
        self.fetch_k, self.lambda_mult = max(fetch_k, k), lambda_mult

    def select(self, input_variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        import numpy as np

        from .._mmr import mmr_select

        if self._matrix is None:
            return []
        q = self._query(input_variables)
        sims = self._matrix @ q
        cand = np.argsort(-sims, kind="stable")[: self.fetch_k]
        order = mmr_select(q, self._matrix[cand], self.k, self.lambda_mult)
        return [dict(self.examples[int(cand[i])]) for i in order]


class LengthBasedSelector(ExampleSelector):
    """Examples in their given order, as many as fit: the formatted examples plus the input's own
    text stay within ``max_tokens`` (counted with :func:`~maru.usage.count_tokens` for ``model``).
    Long inputs get fewer examples."""

    def __init__(
        self,
        examples: Sequence[Mapping[str, Any]],
        example_prompt: BasePromptTemplate,
        max_tokens: int = 1000,
        model: str | None = None,
    ) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.example_prompt, self.max_tokens, self.model = example_prompt, max_tokens, model
        self.examples: list[dict[str, Any]] = []
        self._costs: list[int] = []
        for e in examples:
            self.add_example(e)

    def _count(self, text: str) -> int:
        from ..usage.tokens import count_tokens

        return count_tokens(text, self.model)

    def add_example(self, example: Mapping[str, Any]) -> None:
        from .few_shot import _example_values

        ex = _check_example(example)
        values = _example_values(self.example_prompt, ex, len(self.examples))
        rendered = self.example_prompt.format(**values)
        self.examples.append(ex)
        self._costs.append(self._count(rendered if isinstance(rendered, str) else str(rendered)))

    def select(self, input_variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        remaining = self.max_tokens - self._count(" ".join(str(v) for v in input_variables.values()))
        picked: list[dict[str, Any]] = []
        for ex, cost in zip(self.examples, self._costs, strict=True):
            if cost > remaining:
                break
            picked.append(dict(ex))
            remaining -= cost
        return picked
