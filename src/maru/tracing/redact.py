"""Redaction: secrets never reach a trace store, an exporter or a log.

Two rules, applied to every value before it is stored: a dict entry whose *key* names a secret
(``api_key``, ``authorization``, ``password`` …) has its value replaced, and any *text* that looks
like a credential (OpenAI / Anthropic / Google keys, bearer tokens, AWS access keys, plus the
patterns a user configures) is masked where it appears.
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

DEFAULT_PATTERNS = (
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic keys
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"(?i:bearer)\s+[A-Za-z0-9._\-~+/]{12,}=*",  # bearer tokens
    r"AKIA[0-9A-Z]{16}",  # AWS access key ids
    r"xox[baprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
)


class Redactor:
    """Masks secrets in JSON-like values (dicts, lists, strings). ``patterns`` are extra regular
    expressions to mask in text, on top of the defaults."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._text = re.compile("|".join(f"(?:{p})" for p in (*DEFAULT_PATTERNS, *patterns)))

    def text(self, value: str) -> str:
        return self._text.sub(MASK, value)

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
