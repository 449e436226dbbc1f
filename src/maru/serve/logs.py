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

from ..redact import RedactingFilter, redact_record

__all__ = ["RedactingFilter", "install_log_redaction", "redact_record"]

SERVER_LOGGERS = ("", "maru", "maru.serve", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi")
"""The loggers (``""``: the root) whose own records and whose handlers' records are masked."""

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
