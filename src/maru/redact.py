"""Redaction: secrets never reach a trace, an exporter, a log or an HTTP error.

Two rules. Any *text* that looks like a credential (OpenAI / Anthropic / Google keys, bearer
tokens, GitHub / Slack / AWS tokens, ``api_key=…`` forms) is masked where it appears, keeping a
hint of what it was (``sk-***``). A dict entry whose *key* names a secret (``api_key``,
``authorization``, ``password`` …) has its whole value replaced. One module, so the tracer and the
HTTP server mask exactly the same things.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"

SECRET_KEYS = re.compile(
    r"(api[_-]?key|apikey|authorization|auth[_-]?token|access[_-]?token|refresh[_-]?token|"
    r"secret|password|passwd|private[_-]?key|client[_-]?secret|cookie|x-api-key)",
    re.IGNORECASE,
)

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


def redact_text(text: str) -> str:
    """``text`` with API-key-looking strings masked (``sk-…``, ``Bearer …``, ``api_key=…`` and a
    few well-known token formats). Meant for error messages sent to clients: it errs on the side of
    masking."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text



class Redactor:
    """Masks secrets in JSON-like values (dicts, lists, strings). ``patterns`` are extra regular
    expressions whose matches in text are replaced by ``[REDACTED]``."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        patterns = list(patterns)
        self._extra = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def text(self, value: str) -> str:
        value = redact_text(value)
        return self._extra.sub(MASK, value) if self._extra is not None else value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: (MASK if isinstance(k, str) and SECRET_KEYS.search(k) and v not in (None, "") else self(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


default_redactor = Redactor()
