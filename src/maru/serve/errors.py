"""How an exception becomes an HTTP answer: a status, and a JSON body that never carries a secret.

=========================================================  ======
raised by the runnable                                     status
=========================================================  ======
``maru.errors.PromptError`` (missing / unexpected variable)   422
``pydantic.ValidationError`` (input parsing)                  422
``maru.usage.BudgetExceeded`` (a budget refused the call)     429
anything else                                                 500
=========================================================  ======

The body is ``{"error": {"type": <exception class name>, "message": <text>}}``; the text passes
through :func:`redact`, which masks strings that look like credentials.
"""

from __future__ import annotations

from typing import Any

from ..redact import redact_text

__all__ = ["error_payload", "redact", "status_for"]

redact = redact_text
"""Mask API-key-looking strings in text (see :mod:`maru.redact`); used on error messages sent to clients."""


def status_for(exc: BaseException) -> int:
    """The HTTP status an exception raised by the served runnable maps to."""
    from pydantic import ValidationError

    from ..errors import PromptError

    if isinstance(exc, PromptError | ValidationError):
        return 422
    budget = _budget_exceeded()
    if budget is not None and isinstance(exc, budget):
        return 429
    return 500


def _budget_exceeded() -> type[BaseException] | None:
    import sys

    module = sys.modules.get("maru.usage.budget")  # not loaded: no budget can have raised
    return getattr(module, "BudgetExceeded", None) if module is not None else None


def error_payload(exc: BaseException) -> dict[str, Any]:
    """``{"type": name, "message": redacted text}`` for an exception."""
    message = str(exc)
    if not message and exc.args:
        message = repr(exc.args[0])
    return {"type": type(exc).__name__, "message": redact(message)}
