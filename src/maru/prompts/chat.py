"""Chat prompts: a list of message templates, literal messages and message placeholders.

::

    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful assistant who answers in {language}."),
        MessagesPlaceholder("history", optional=True),
        ("human", "{question}"),
    ])
    prompt.invoke({"language": "Korean", "question": "What is maru?"})

Each entry compiles once, when the prompt is built, into an emitter that appends its messages to the
output list; formatting is a loop over the emitters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import PromptError
from ..messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    to_message,
)
from .base import BasePromptTemplate, _quoted
from .string import PromptTemplate, check_template_format
from .template import Field, Template, compile_template
from .values import ChatPromptValue, PromptValue

__all__ = [
    "AIMessagePromptTemplate",
    "BaseMessagePromptTemplate",
    "ChatPromptTemplate",
    "HumanMessagePromptTemplate",
    "MessagePromptTemplate",
    "MessagesPlaceholder",
    "SystemMessagePromptTemplate",
    "is_message_like",
]

_ROLES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "developer": SystemMessage,
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
}

Emitter = Callable[[Mapping[str, Any], list[BaseMessage]], None]


# --------------------------------------------------------------------------- message templates
class BaseMessagePromptTemplate:
    """Something that renders into messages inside a :class:`ChatPromptTemplate`.

    Subclasses set ``_variables`` (required), ``_optional`` and ``_emit(values, out)``, which
    appends the rendered messages to ``out``."""

    _variables: tuple[str, ...] = ()
    _optional: tuple[str, ...] = ()
    partial_variables: dict[str, Any]
    _emit: Emitter

    @property
    def input_variables(self) -> list[str]:
        return [v for v in self._variables if v not in self.partial_variables]

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        values = {**self.partial_variables, **kwargs}
        values.update({k: v() for k, v in values.items() if callable(v) and k not in kwargs})
        out: list[BaseMessage] = []
        try:
            self._emit(values, out)
        except PromptError:
            raise
        except KeyError:
            missing = [v for v in self._variables if v not in values]
            if not missing:
                raise
            raise PromptError(
                f"{type(self).__name__} is missing variable(s) {_quoted(missing)}; it expects "
                f"{_quoted(self.input_variables)}"
            ) from None
        return out

    def __add__(self, other: Any) -> ChatPromptTemplate:
        return ChatPromptTemplate([self]) + other

    def __radd__(self, other: Any) -> ChatPromptTemplate:
        return ChatPromptTemplate._coerce_other(other) + ChatPromptTemplate([self])


class MessagePromptTemplate(BaseMessagePromptTemplate):
    """One message whose content is a template: text, or a list of content parts whose strings
    are templates (``[{"type": "text", "text": "{q}"}, {"type": "image_url", "image_url":
    {"url": "{image}"}}]``)."""

    message_class: ClassVar[type[BaseMessage]] = HumanMessage

    def __init__(
        self,
        template: str | Template | Sequence[Any] | PromptTemplate,
        *,
        message_class: type[BaseMessage] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        cls = message_class or self.message_class
        self.message_class = cls  # type: ignore[misc]
        self.partial_variables = dict(partial_variables or {})
        self.message_name = name
        if isinstance(template, PromptTemplate):
            self.partial_variables = {**template.partial_variables, **self.partial_variables}
            template = template.compiled
        if isinstance(template, str):
            template = compile_template(template)
        if isinstance(template, Template):
            self.template: Template | Any = template
            self._variables = template.variables
            render = template.render
            if name is None:
                self._emit = lambda values, out: out.append(cls(render(values)))
            else:
                self._emit = lambda values, out: out.append(cls(render(values), name))
        elif isinstance(template, Sequence):
            compiled, variables = _compile_parts(list(template))
            self.template = compiled
            self._variables = tuple(dict.fromkeys(variables))
            self._emit = lambda values, out: out.append(cls(_render_parts(compiled, values), name))
        else:
            raise TypeError(
                f"a message template's content is a str or a list of content parts, got "
                f"{type(template).__name__}: {template!r:.80}"
            )

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> MessagePromptTemplate:
        return cls(template, **kwargs)

    def format(self, **kwargs: Any) -> BaseMessage:
        """The rendered message."""
        return self.format_messages(**kwargs)[0]

    def __repr__(self) -> str:
        source = self.template.source if isinstance(self.template, Template) else self.template
        return f"{type(self).__name__}({source!r})"


class SystemMessagePromptTemplate(MessagePromptTemplate):
    message_class: ClassVar[type[BaseMessage]] = SystemMessage


class HumanMessagePromptTemplate(MessagePromptTemplate):
    message_class: ClassVar[type[BaseMessage]] = HumanMessage


class AIMessagePromptTemplate(MessagePromptTemplate):
    message_class: ClassVar[type[BaseMessage]] = AIMessage


def _compile_parts(value: Any) -> tuple[Any, list[str]]:
    """Content parts with every string compiled to a template; returns them and their variables."""
    if isinstance(value, str):
        template = compile_template(value)
        return (template if template.variables else value), list(template.variables)
    if isinstance(value, Mapping):
        items, variables = [], []
        for key, item in value.items():
            compiled, names = _compile_parts(item)
            items.append((key, compiled))
            variables += names
        return _Dict(items), variables
    if isinstance(value, list | tuple):
        out, variables = [], []
        for item in value:
            compiled, names = _compile_parts(item)
            out.append(compiled)
            variables += names
        return out, variables
    return value, []


class _Dict(list):  # a compiled mapping: a list of (key, compiled value) pairs
    __slots__ = ()


def _render_parts(compiled: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(compiled, Template):
        return compiled.render(values)
    if isinstance(compiled, _Dict):
        return {key: _render_parts(item, values) for key, item in compiled}
    if isinstance(compiled, list):
        return [_render_parts(item, values) for item in compiled]
    return compiled


class MessagesPlaceholder(BaseMessagePromptTemplate):
    """Inserts the list of messages given in ``variable_name`` (chat history, an agent's
    scratchpad …). Items may be messages, ``(role, content)`` tuples, ``{"role", "content"}`` dicts
    or strings (human messages); a prompt value or a single message is taken as its messages.

    ``optional=True``: the variable may be left out (or ``None``) and inserts nothing.
    ``n_messages``: insert only the last ``n_messages`` messages.
    """

    def __init__(
        self, variable_name: str, optional: bool = False, n_messages: int | None = None
    ) -> None:
        if not isinstance(variable_name, str) or not variable_name.isidentifier():
            raise PromptError(
                f"MessagesPlaceholder needs a variable name (an identifier), got {variable_name!r}"
            )
        if n_messages is not None and (not isinstance(n_messages, int) or n_messages < 1):
            raise ValueError(f"n_messages must be a positive int or None, got {n_messages!r}")
        self.variable_name = variable_name
        self.optional = optional
        self.n_messages = n_messages
        self.partial_variables = {}
        if optional:
            self._optional = (variable_name,)
        else:
            self._variables = (variable_name,)

    def _emit(self, values: Mapping[str, Any], out: list[BaseMessage]) -> None:  # type: ignore[override]
        name = self.variable_name
        if self.optional:
            value = values.get(name)
            if value is None:
                return
        else:
            value = values[name]
        messages = self._messages(value)
        if self.n_messages is not None:
            messages = messages[-self.n_messages :]
        out.extend(messages)

    def _messages(self, value: Any) -> list[BaseMessage]:
        if isinstance(value, list | tuple):
            try:
                return [m if isinstance(m, BaseMessage) else to_message(m) for m in value]
            except (TypeError, ValueError) as exc:
                raise PromptError(
                    f"variable {self.variable_name!r} holds an item that is not a message: {exc}"
                ) from None
        if isinstance(value, BaseMessage):
            return [value]
        to_messages = getattr(value, "to_messages", None)
        if to_messages is not None and not isinstance(value, str):
            return list(to_messages())
        raise PromptError(
            f"variable {self.variable_name!r} is a message placeholder and takes a list of messages, "
            f"got {type(value).__name__}: {value!r:.80}. Wrap a single text as [('human', text)]"
        )

    def __repr__(self) -> str:
        extra = ", optional=True" if self.optional else ""
        if self.n_messages is not None:
            extra += f", n_messages={self.n_messages}"
        return f"MessagesPlaceholder({self.variable_name!r}{extra})"


class _Literal(BaseMessagePromptTemplate):
    """A fixed message, inserted as is (its content is not a template)."""

    def __init__(self, message: BaseMessage) -> None:
        self.message = message
        self.partial_variables = {}
        append_message = message
        self._emit = lambda values, out: out.append(append_message)


def is_message_like(value: Any) -> bool:
    """Whether ``value`` can be an entry of a chat prompt (other than a plain string)."""
    if isinstance(value, BaseMessage | BaseMessagePromptTemplate | PromptTemplate | tuple):
        return True
    if isinstance(value, Mapping) and ("role" in value or "type" in value):
        return True
    if isinstance(value, list):
        return all(isinstance(v, str) or is_message_like(v) for v in value)
    return hasattr(value, "_emit")


def _template_entry(role: Any, content: Any, source: Any) -> Any:
    if role == "placeholder":
        template = compile_template(content) if isinstance(content, str) else None
        if template is None or len(template.parts) != 1 or not isinstance(template.parts[0], Field):
            raise PromptError(
                f"a placeholder entry is written ('placeholder', '{{variable}}'), got {source!r}"
            )
        return MessagesPlaceholder(template.parts[0].name, optional=True)
    cls = _ROLES.get(role) if isinstance(role, str) else None
    if cls is None:
        raise PromptError(
            f"unknown role {role!r} in chat prompt entry {source!r:.80}; use one of "
            f"{sorted(_ROLES) + ['placeholder']}"
        )
    return MessagePromptTemplate(content, message_class=cls)


def _to_entry(entry: Any) -> Any:
    """One ``from_messages`` entry as a message template, a placeholder or a fixed message."""
    if isinstance(entry, BaseMessage):
        return entry
    if isinstance(entry, BaseMessagePromptTemplate) or hasattr(entry, "_emit"):
        return entry
    if isinstance(entry, str):
        return MessagePromptTemplate(entry, message_class=HumanMessage)
    if isinstance(entry, PromptTemplate):
        return MessagePromptTemplate(entry, message_class=HumanMessage)
    if isinstance(entry, tuple) and len(entry) == 2:
        return _template_entry(entry[0], entry[1], entry)
    if isinstance(entry, Mapping):
        if set(entry) <= {"role", "type", "content"}:
            return _template_entry(
                entry.get("role") or entry.get("type"), entry.get("content", ""), entry
            )
        try:
            return to_message(entry)
        except (TypeError, ValueError) as exc:
            raise PromptError(
                f"cannot make a chat prompt entry from {entry!r:.80}: {exc}"
            ) from None
    raise TypeError(
        f"cannot use {type(entry).__name__} {entry!r:.80} in a chat prompt: pass (role, template) "
        "tuples, messages, message templates, MessagesPlaceholder(...) or strings"
    )


# --------------------------------------------------------------------------- the chat prompt
class ChatPromptTemplate(BasePromptTemplate):
    """A list of messages to format: ``(role, template)`` tuples (roles ``system``, ``human`` /
    ``user``, ``ai`` / ``assistant``), ``("placeholder", "{name}")`` (an optional
    :class:`MessagesPlaceholder`), :class:`MessagesPlaceholder` s, fixed messages
    (``SystemMessage(...)``, inserted as is), message templates, text prompts (a human message) and
    plain strings (a human message template). Nested chat prompts are inlined.

    ``invoke(dict)`` returns a :class:`~maru.prompts.ChatPromptValue`. ``+`` appends entries:
    ``prompt + ("human", "{q}")``, ``prompt + other_prompt``, ``prompt + SystemMessage(...)``.
    """

    def __init__(
        self,
        messages: Sequence[Any],
        *,
        partial_variables: Mapping[str, Any] | None = None,
        allow_extra: bool = False,
        template_format: str = "f-string",
        name: str | None = None,
    ) -> None:
        check_template_format(template_format)
        if isinstance(messages, str | BaseMessage) or not isinstance(messages, Sequence):
            raise TypeError(
                "ChatPromptTemplate takes a list of entries, e.g. [('system', '...'), "
                f"('human', '{{question}}')]; got {type(messages).__name__}"
            )
        entries: list[Any] = []
        partials: dict[str, Any] = {}
        for item in messages:
            if isinstance(item, ChatPromptTemplate):
                entries.extend(item.messages)
                partials.update(item.partial_variables)
                continue
            entry = _to_entry(item)
            if not isinstance(entry, BaseMessage):
                partials.update(getattr(entry, "partial_variables", None) or {})
            entries.append(entry)
        partials.update(partial_variables or {})
        self.messages: list[Any] = entries
        parts = [_Literal(e) if isinstance(e, BaseMessage) else e for e in entries]
        self._emitters: tuple[Emitter, ...] = tuple(p._emit for p in parts)
        required = [v for p in parts for v in p._variables]
        optional = [v for p in parts for v in p._optional]
        if name is not None:
            self._name = name
        self._init_variables(required, optional, partials, allow_extra)

    @classmethod
    def from_messages(cls, messages: Sequence[Any], **kwargs: Any) -> ChatPromptTemplate:
        """Build a chat prompt from its entries (see the class documentation)."""
        return cls(messages, **kwargs)

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> ChatPromptTemplate:
        """A chat prompt of one human message."""
        return cls([("human", template)], **kwargs)

    def _render(self, values: dict[str, Any]) -> PromptValue:
        out: list[BaseMessage] = []
        for emit in self._emitters:
            emit(values, out)
        return ChatPromptValue(out)

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return self.format_prompt(**kwargs).messages  # type: ignore[attr-defined,no-any-return]

    # --------------------------------------------------------------- composition
    @staticmethod
    def _coerce_other(other: Any) -> ChatPromptTemplate:
        if isinstance(other, ChatPromptTemplate):
            return other
        if isinstance(other, list):
            return ChatPromptTemplate(other)
        if isinstance(other, str) or is_message_like(other):
            return ChatPromptTemplate([other])
        raise TypeError(
            f"cannot add {type(other).__name__} {other!r:.80} to a chat prompt: add a chat prompt, "
            "a (role, template) tuple, a message, a message template or a string"
        )

    def _joined(self, first: ChatPromptTemplate, second: ChatPromptTemplate) -> ChatPromptTemplate:
        return ChatPromptTemplate(
            [*first.messages, *second.messages],
            partial_variables={**first.partial_variables, **second.partial_variables},
            allow_extra=first.allow_extra or second.allow_extra,
        )

    def __add__(self, other: Any) -> ChatPromptTemplate:
        try:
            other_prompt = self._coerce_other(other)
        except TypeError:
            return NotImplemented
        return self._joined(self, other_prompt)

    def __radd__(self, other: Any) -> ChatPromptTemplate:
        try:
            other_prompt = self._coerce_other(other)
        except TypeError:
            return NotImplemented
        return self._joined(other_prompt, self)

    def __repr__(self) -> str:
        return f"ChatPromptTemplate(messages={self.messages!r})"
