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

import re
from typing import Any

__all__ = ["error_payload", "redact", "status_for"]

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # OpenAI-style keys: sk-..., sk-proj-..., sk-ant-... (Anthropic) …
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{8,}"), r"\1\2***"),
    # Google API keys, GitHub tokens, Slack tokens, AWS access key ids
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "gh*_***"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), "xox*-***"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AKIA***"),
    # key=value / "key": "value" forms of things named like secrets
    (
        re.compile(
            r"(?i)\b([\w\-]*(?:api[_\-]?key|secret|password|passwd|access[_\-]?token|auth[_\-]?token)"
            r"['\"]?\s*[:=]\s*['\"]?)[^\s'\",;&}]{4,}"
        ),
        r"\1***",
    ),
)


def redact(text: str) -> str:
    """``text`` with API-key-looking strings masked (``sk-…``, ``Bearer …``, ``api_key=…`` and a
    few well-known token formats). Meant for error messages sent to clients: it errs on the side of
    masking."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


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
