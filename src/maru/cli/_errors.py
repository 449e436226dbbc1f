"""How an error that reaches the ``maru`` command is shown: one message that says what was wrong
(and, when the error knows it, what to do), never a traceback; ``maru --debug …`` (or
``MARU_DEBUG=1``) shows the traceback instead.

Two kinds of error are the user's to fix and get this treatment: maru's own errors
(:class:`maru.errors.MaruError`, whose messages are written for users), and the errors the outside
world raises on the user's input or setup — a file that is not there (``OSError``), a server that
does not answer (Redis, a database, an HTTP endpoint). Anything else is a bug, in maru or in the
user's own step, and keeps its traceback.
"""

from __future__ import annotations

import os
from typing import Any

from typer.core import TyperGroup

from ._shared import USAGE_ERROR, debugging, fail

DEBUG_ENV = "MARU_DEBUG"
"""Set to 1 for tracebacks, as the root option ``--debug`` does."""

FAILURE = 1
"""Exit code of a command that started and failed."""

# Connection failures of the client libraries maru uses, by "module.ClassName" of the class or one
# of its bases: matched by name so that none of them is imported to recognise its own error.
CONNECTION_ERRORS = frozenset({
    "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError",
    "sqlalchemy.exc.OperationalError",
    "psycopg.OperationalError",
    "httpx.TransportError",
    "openai.APIConnectionError",
})


class MaruGroup(TyperGroup):
    """The root command group: whatever command runs inside it, a user error ends as one message
    (see the module docstring)."""

    def invoke(self, ctx: Any) -> Any:  # the click Context typer vendors (typer.Context is a subclass)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if debugging() or not is_user_error(exc):
                raise
            report(exc)


def is_user_error(exc: BaseException) -> bool:
    """A maru error, an ``OSError`` or a client library's connection failure (click's own exits
    and usage errors are none of these: click reports them itself)."""
    from ..errors import MaruError

    return isinstance(exc, MaruError | OSError) or is_connection_error(exc)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` says a server could not be reached (a refused or timed-out connection, or a
    client library's error for that)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(f"{cls.__module__}.{cls.__qualname__}" in CONNECTION_ERRORS for cls in type(exc).__mro__)


def report(exc: BaseException) -> None:
    """Print ``exc`` as one message on stderr and exit: 2 when the command could not start
    (configuration, bad input), else 1."""
    from ..errors import ConfigurationError, MaruError, PromptError

    hint = getattr(exc, "hint", None)
    if not isinstance(exc, MaruError):
        hint = hint or "maru --debug … shows where it happened."
    code = USAGE_ERROR if isinstance(exc, ConfigurationError | PromptError) else FAILURE
    fail(describe_error(exc), hint, code=code)


def describe_error(exc: BaseException) -> str:
    """The error's own words: a maru error's message as is; an ``OSError`` as ``path: reason``;
    anything else as ``Type: message``, the first line of a multi-line one."""
    from ..errors import MaruError

    if isinstance(exc, MaruError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = " → ".join(os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
