"""What every prompt template shares: its variables, partials, input checking and the runnable hooks.

Input checking is strict by default. A missing variable is an error naming it and the variables the
prompt expects; so is an *unexpected* variable, because a misspelt key (``{"questoin": …}``) would
otherwise be silently dropped while the real variable goes missing, or, worse, an intended value
would never reach the prompt. Chains that feed a prompt a dict carrying more keys than it uses
build the prompt with ``allow_extra=True`` (or ``pick(...)`` the keys first).

The checks stay off the hot path: when the input holds exactly as many keys as the prompt needs,
rendering itself proves them right (a missing key raises ``KeyError``, turned into the error
message only then).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import PromptError
from ..messages import BaseMessage
from .values import PromptValue

__all__ = ["BasePromptTemplate"]


def _quoted(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(repr(n) for n in names) if names else "(none)"


class BasePromptTemplate(Runnable[Any, PromptValue], ABC):
    """A prompt: invoked with a dict of variables, it returns a :class:`PromptValue`.

    - ``input_variables``: the variables a caller must give, in order of first appearance;
    - ``optional_variables``: those it may give (optional message placeholders);
    - ``partial_variables``: those fixed by :meth:`partial` (values, or callables called at each
      format);
    - ``allow_extra``: whether keys the prompt does not use are ignored instead of refused.

    A prompt with one input variable also takes the bare value instead of a dict:
    ``prompt.invoke("cats")``.
    """

    kind: ClassVar[str] = "prompt"

    input_variables: list[str]
    optional_variables: list[str]
    partial_variables: dict[str, Any]
    allow_extra: bool

    # --------------------------------------------------------------- variables
    def _init_variables(
        self,
        variables: Iterable[str],
        optional: Iterable[str] = (),
        partial_variables: Mapping[str, Any] | None = None,
        allow_extra: bool = False,
    ) -> None:
        """Set the variable bookkeeping from the template's own ``variables`` (required, in order)
        and ``optional`` ones."""
        variables = list(dict.fromkeys(variables))
        optional = [v for v in dict.fromkeys(optional) if v not in variables]
        partials = dict(partial_variables or {})
        unknown = [k for k in partials if k not in variables and k not in optional]
        if unknown:
            raise PromptError(
                f"{self.name}: partial value(s) for {_quoted(unknown)}, which the template does not "
                f"use; its variables are {_quoted(variables + optional)}"
            )
        self._template_variables = variables
        self._template_optional = optional
        self.partial_variables = partials
        self.allow_extra = bool(allow_extra)
        self.input_variables = [v for v in variables if v not in partials]
        self.optional_variables = [v for v in optional if v not in partials]
        self._allowed = frozenset(variables) | frozenset(optional)
        # keys a correct input has once partials are merged in (optional ones not counted)
        self._n_expected = len(variables) + sum(1 for k in partials if k in optional)
        self._n_fast = -1 if partials else self._n_expected
        self._static_partials = {k: v for k, v in partials.items() if not callable(v)}
        self._dynamic_partials = tuple((k, v) for k, v in partials.items() if callable(v))
        if len(self.input_variables) == 1:
            self._single: str | None = self.input_variables[0]
        elif not self.input_variables and len(self.optional_variables) == 1:
            self._single = self.optional_variables[0]
        else:
            self._single = None

    def partial(self, **values: Any) -> BasePromptTemplate:
        """A copy of this prompt with some variables fixed. A callable value is called (with no
        arguments) each time the prompt is formatted, e.g. ``partial(today=lambda: date.today())``."""
        new = copy.copy(self)
        new._init_variables(
            self._template_variables,
            self._template_optional,
            {**self.partial_variables, **values},
            self.allow_extra,
        )
        return new

    # --------------------------------------------------------------- input checking
    def _values(self, input: Any) -> dict[str, Any]:
        """The input as the dict to render: bare values wrapped, partials merged, extras refused."""
        if type(input) is not dict:
            if isinstance(input, Mapping):
                input = dict(input)
            elif self._single is not None:
                input = {self._single: input}
            elif input is None and not self.input_variables:
                input = {}
            else:
                raise PromptError(
                    f"{self.name} takes a dict of variables {_quoted(self.input_variables)}, got "
                    f"{type(input).__name__}: {input!r:.80}"
                )
        if self.partial_variables:
            merged = dict(self._static_partials)
            for key, fn in self._dynamic_partials:
                merged[key] = fn()
            merged.update(input)
            input = merged
        if len(input) != self._n_expected:
            self._check_keys(input)
        return input

    def _check_keys(self, values: Mapping[str, Any]) -> None:
        extra = [k for k in values if k not in self._allowed]
        if extra and not self.allow_extra:
            missing = [v for v in self.input_variables if v not in values]
            also = f"; it is also missing {_quoted(missing)}" if missing else ""
            raise PromptError(
                f"{self.name} got unexpected variable(s) {_quoted(extra)}{also}. It expects "
                f"{self._expected()}. Remove the extra keys, pick(...) the ones the prompt needs, "
                "or build the prompt with allow_extra=True to ignore them"
            )
        self._check_missing(values)

    def _check_missing(self, values: Mapping[str, Any]) -> None:
        missing = [v for v in self._template_variables if v not in values]
        if missing:
            raise PromptError(
                f"{self.name} is missing variable(s) {_quoted(missing)}. It expects "
                f"{self._expected()}; got {_quoted(values)}"
            )

    def _expected(self) -> str:
        text = _quoted(self.input_variables)
        if self.optional_variables:
            text += f" (optional: {_quoted(self.optional_variables)})"
        return text

    def _format_value(self, values: dict[str, Any]) -> PromptValue:
        try:
            return self._render(values)
        except PromptError:
            raise
        except KeyError:
            self._check_keys(values)
            raise

    # --------------------------------------------------------------- to implement
    @abstractmethod
    def _render(self, values: dict[str, Any]) -> PromptValue:
        """Build the prompt value from checked values (partials merged). A missing key may raise
        ``KeyError``."""

    # --------------------------------------------------------------- public API
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> PromptValue:
        # Fast path: a plain dict with as many keys as the prompt needs and no partials to merge;
        # rendering proves the keys right. Anything else takes the checked path.
        if type(input) is dict and len(input) == self._n_fast:
            try:
                return self._render(input)
            except KeyError:
                pass
        return self._format_value(self._values(input))

    def format_prompt(self, **kwargs: Any) -> PromptValue:
        """The prompt value for these variables (what ``invoke`` returns)."""
        return self._format_value(self._values(kwargs))

    def format(self, **kwargs: Any) -> str:
        """The prompt as text."""
        return self.format_prompt(**kwargs).to_string()

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """The prompt as chat messages."""
        return self.format_prompt(**kwargs).to_messages()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_variables={self.input_variables!r})"
