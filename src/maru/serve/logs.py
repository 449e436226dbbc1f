"""Log records the server writes, with secrets masked: message, arguments, traceback and stack.

A failing call often carries a credential in its exception (a provider echoes the key it was sent,
a client library puts the ``Authorization`` header in its message), and a traceback ends with that
message — for every exception of the chain. Masking only the one-line summary is not enough, so
a filter rewrites the whole record before any handler formats it: the arguments are masked one by
one (uvicorn's access formatter unpacks them as a tuple), and the traceback is formatted once,
masked, and stored as the record's ``exc_text`` in place of the live exception.
"""

from __future__ import annotations

import logging
from typing import Any

from ..redact import redact_text

__all__ = ["RedactingFilter", "install_log_redaction", "redact_record"]

SERVER_LOGGERS = ("", "maru", "maru.serve", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi")
"""The loggers (``""``: the root) whose own records and whose handlers' records are masked."""

_PLAIN = (int, float, bool, type(None))


class RedactingFilter(logging.Filter):
    """A filter that masks secrets in every record it sees (it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in ``record`` in place (idempotent: masking masked text changes nothing)."""
    if isinstance(record.msg, str):
        record.msg = redact_text(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redact_arg(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # a handler would format the live exception again, unmasked
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    return _Masked(value)


class _Masked:
    """An argument that is not plain text or a number (an exception, say), shown masked by both
    ``%s`` and ``%r``."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __str__(self) -> str:
        return redact_text(str(self._value))

    def __repr__(self) -> str:
        return redact_text(repr(self._value))


_FILTER = RedactingFilter()


def install_log_redaction(names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Mask secrets in what the named loggers log and in everything their handlers write (records
    that propagate from other loggers included). Call it after logging is configured (uvicorn
    configures it when its ``Config`` is made); calling it again adds nothing twice."""
    for name in names:
        logger = logging.getLogger(name)
        _add_once(logger)
        for handler in logger.handlers:
            _add_once(handler)


def _add_once(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)
