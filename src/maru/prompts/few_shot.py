"""Few-shot prompts from a fixed list of examples, or from examples chosen per input.

Fixed examples are rendered once, when the prompt is built, and become literal text (or fixed
messages): braces inside an example's values are never read as template fields, and formatting the
prompt costs no more than formatting its prefix and suffix. With an ``example_selector``
(:mod:`maru.prompts.selectors`: semantic similarity, MMR, length in tokens) the examples are chosen
for each input and rendered then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ..errors import PromptError
from ..messages import BaseMessage
from .base import BasePromptTemplate, _quoted
from .chat import BaseMessagePromptTemplate, ChatPromptTemplate
from .string import PromptTemplate
from .template import Template, compile_template
from .values import ChatPromptValue, PromptValue, StringPromptValue

__all__ = ["FewShotChatMessagePromptTemplate", "FewShotPromptTemplate"]


def _example_values(prompt: Any, example: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The keys of ``example`` that ``prompt`` uses; an example may carry others (ids, notes)."""
    if not isinstance(example, Mapping):
        raise PromptError(f"example {index} is a {type(example).__name__}, not a dict of variables")
    needed = list(prompt.input_variables)
    missing = [v for v in needed if v not in example]
    if missing:
        raise PromptError(
            f"example {index} is missing variable(s) {_quoted(missing)} of the example prompt, which "
            f"expects {_quoted(needed)}; the example has {_quoted(example)}"
        )
    optional = cast(
        "Iterable[str]",
        getattr(prompt, "optional_variables", None) or getattr(prompt, "_optional", ()),
    )
    return {k: example[k] for k in [*needed, *optional] if k in example}


class FewShotPromptTemplate(PromptTemplate):
    """A text prompt: ``prefix``, the examples (each formatted with ``example_prompt``), then
    ``suffix``, joined by ``example_separator`` (empty pieces are left out). ``prefix`` and
    ``suffix`` are templates whose variables are the prompt's input variables.

    ::

        FewShotPromptTemplate(
            examples=[{"word": "happy", "antonym": "sad"}, {"word": "tall", "antonym": "short"}],
            example_prompt=PromptTemplate("Word: {word}\\nAntonym: {antonym}"),
            prefix="Give the antonym of every word.",
            suffix="Word: {input}\\nAntonym:",
        )
    """

    def __init__(
        self,
        *,
        examples: Sequence[Mapping[str, Any]] | None = None,
        example_selector: Any = None,
        example_prompt: PromptTemplate,
        suffix: str,
        prefix: str = "",
        example_separator: str = "\n\n",
        input_variables: Sequence[str] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        allow_extra: bool = False,
        template_format: str = "f-string",
        name: str | None = None,
    ) -> None:
        if not isinstance(example_prompt, PromptTemplate):
            raise TypeError(
                "FewShotPromptTemplate's example_prompt is a PromptTemplate; for chat messages use "
                "FewShotChatMessagePromptTemplate"
            )
        if (examples is None) == (example_selector is None):
            raise PromptError("give exactly one of examples=[...] or example_selector=...")
        self.example_selector = example_selector
        self.examples = list(examples or [])
        self.example_prompt = example_prompt
        self.prefix = prefix
        self.suffix = suffix
        self.example_separator = example_separator
        self._prefix_t = compile_template(prefix) if prefix else None
        self._suffix_t = compile_template(suffix) if suffix else None
        rendered = [
            example_prompt.format(**_example_values(example_prompt, ex, i))
            for i, ex in enumerate(self.examples)
        ]
        pieces: list[Template] = []
        if prefix:
            pieces.append(compile_template(prefix))
        if rendered:
            pieces.append(Template([example_separator.join(rendered)]))
        if suffix:
            pieces.append(compile_template(suffix))
        parts: list[Any] = []
        for k, piece in enumerate(pieces):
            if k:
                parts.append(example_separator)
            parts.extend(piece.parts)
        super().__init__(
            Template(parts),
            input_variables=input_variables,
            partial_variables=partial_variables,
            allow_extra=allow_extra,
            template_format=template_format,
            name=name,
        )

    def _render(self, values: dict[str, Any]) -> PromptValue:
        if self.example_selector is None:
            return super()._render(values)
        return StringPromptValue(self._render_selected(values))

    def format(self, **kwargs: Any) -> str:
        if self.example_selector is None:
            return super().format(**kwargs)
        values = self._values(kwargs)
        try:
            return self._render_selected(values)
        except KeyError:
            self._check_keys(values)
            raise

    def _render_selected(self, values: dict[str, Any]) -> str:
        chosen = self.example_selector.select(values)
        pieces = [self._prefix_t.render(values)] if self._prefix_t is not None else []
        rendered = [
            self.example_prompt.format(**_example_values(self.example_prompt, ex, i))
            for i, ex in enumerate(chosen)
        ]
        if rendered:
            pieces.append(self.example_separator.join(rendered))
        if self._suffix_t is not None:
            pieces.append(self._suffix_t.render(values))
        return self.example_separator.join(p for p in pieces if p)

    def __repr__(self) -> str:
        shown = f"selector={type(self.example_selector).__name__}" if self.example_selector else f"examples={len(self.examples)}"
        return f"FewShotPromptTemplate({shown}, input_variables={self.input_variables!r})"


class FewShotChatMessagePromptTemplate(BasePromptTemplate):
    """The examples as chat messages, each formatted with ``example_prompt`` (a chat prompt, or a
    message template), usually placed inside a :class:`ChatPromptTemplate`::

        few_shot = FewShotChatMessagePromptTemplate(
            examples=[{"input": "2+2", "output": "4"}, {"input": "2+3", "output": "5"}],
            example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
        )
        prompt = ChatPromptTemplate.from_messages([("system", "You do arithmetic."), few_shot, ("human", "{input}")])

    Invoked alone it returns the examples' messages.
    """

    def __init__(
        self,
        *,
        examples: Sequence[Mapping[str, Any]] | None = None,
        example_selector: Any = None,
        input_variables: Sequence[str] = (),
        example_prompt: ChatPromptTemplate | BaseMessagePromptTemplate,
        name: str | None = None,
    ) -> None:
        if not isinstance(example_prompt, ChatPromptTemplate | BaseMessagePromptTemplate):
            raise TypeError(
                "FewShotChatMessagePromptTemplate's example_prompt is a ChatPromptTemplate or a "
                f"message template, got {type(example_prompt).__name__}"
            )
        if (examples is None) == (example_selector is None):
            raise PromptError("give exactly one of examples=[...] or example_selector=...")
        self.example_selector = example_selector
        self.examples = list(examples or [])
        self.example_prompt = example_prompt
        self._messages = self._messages_for(self.examples)
        if example_selector is None:
            fixed = tuple(self._messages)
            self._emit = lambda values, out: out.extend(fixed)
        else:
            self._emit = lambda values, out: out.extend(self._messages_for(example_selector.select(values)))
        self._variables: tuple[str, ...] = tuple(input_variables)
        self._optional: tuple[str, ...] = ()
        if name is not None:
            self._name = name
        self._init_variables(tuple(input_variables), ())

    def _messages_for(self, examples: Sequence[Mapping[str, Any]]) -> list[BaseMessage]:
        messages: list[BaseMessage] = []
        for i, ex in enumerate(examples):
            messages.extend(self.example_prompt.format_messages(**_example_values(self.example_prompt, ex, i)))
        return messages

    def _render(self, values: dict[str, Any]) -> PromptValue:
        out: list[BaseMessage] = []
        self._emit(values, out)
        return ChatPromptValue(out)

    def __repr__(self) -> str:
        return f"FewShotChatMessagePromptTemplate(examples={len(self.examples)})"
