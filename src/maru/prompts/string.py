"""Text prompts: ``PromptTemplate("Tell me a joke about {topic}")``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import PromptError
from .base import BasePromptTemplate, _quoted
from .template import Template, compile_template
from .values import PromptValue, StringPromptValue

__all__ = ["PromptTemplate", "check_template_format"]


def check_template_format(template_format: str) -> None:
    if template_format in ("f-string", "fstring"):
        return
    if template_format == "jinja2":
        raise PromptError(
            "jinja2 templates are not supported: they can run code found in the template. "
            "Write the template with f-string {variables}"
        )
    raise PromptError(
        f"template_format {template_format!r} is not supported; maru templates use f-string "
        "{variables}"
    )


class PromptTemplate(BasePromptTemplate):
    """A text template with f-string ``{variables}``; ``{{`` and ``}}`` are literal braces.

    ``invoke({"topic": "cats"})`` returns a :class:`~maru.prompts.StringPromptValue`; ``format(...)``
    returns the text. Fields may use conversions and format specs (``{x!r}``, ``{price:.2f}``) but
    never attribute or index access, which is refused when the template is built. ``{x}`` renders
    ``str(x)``.

    ``+`` joins templates: ``prompt + "Answer in {lang}."``, ``prompt_a + prompt_b``; adding a chat
    message or chat template makes a :class:`~maru.prompts.ChatPromptTemplate` whose first message
    is this text, as a human message.
    """

    def __init__(
        self,
        template: str | Template,
        *,
        input_variables: Sequence[str] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        allow_extra: bool = False,
        template_format: str = "f-string",
        name: str | None = None,
    ) -> None:
        check_template_format(template_format)
        self._compiled = template if isinstance(template, Template) else compile_template(template)
        if name is not None:
            self._name = name
        self._init_variables(self._compiled.variables, (), partial_variables, allow_extra)
        if input_variables is not None and set(input_variables) != set(self.input_variables):
            raise PromptError(
                f"input_variables {_quoted(input_variables)} do not match the template's variables "
                f"{_quoted(self.input_variables)}; leave input_variables out, they are read from "
                "the template"
            )

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> PromptTemplate:
        """Same as ``PromptTemplate(template, ...)``, the name LangChain users look for."""
        return cls(template, **kwargs)

    @property
    def template(self) -> str:
        """The template text (``{{``/``}}`` escapes included)."""
        return self._compiled.source

    @property
    def compiled(self) -> Template:
        return self._compiled

    def _render(self, values: dict[str, Any]) -> PromptValue:
        return StringPromptValue(self._compiled.render(values))

    def format(self, **kwargs: Any) -> str:
        values = self._values(kwargs)
        try:
            return self._compiled.render(values)
        except KeyError:
            self._check_keys(values)
            raise

    # --------------------------------------------------------------- composition
    def __add__(self, other: Any) -> Any:
        if isinstance(other, PromptTemplate):
            return PromptTemplate(
                self._compiled + other._compiled,
                partial_variables={**self.partial_variables, **other.partial_variables},
                allow_extra=self.allow_extra or other.allow_extra,
            )
        if isinstance(other, str):
            return PromptTemplate(
                self._compiled + compile_template(other),
                partial_variables=self.partial_variables,
                allow_extra=self.allow_extra,
            )
        from .chat import ChatPromptTemplate, is_message_like

        if isinstance(other, ChatPromptTemplate) or is_message_like(other):
            return ChatPromptTemplate.from_messages([self]) + other
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return PromptTemplate(
                compile_template(other) + self._compiled,
                partial_variables=self.partial_variables,
                allow_extra=self.allow_extra,
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"PromptTemplate({self.template!r})"
