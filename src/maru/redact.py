"""Redaction: secrets never reach a trace, an exporter, a log or an HTTP error.

Two rules. Any *text* that looks like a credential is masked where it appears, keeping a hint of
what it was (``sk-***``): provider keys (OpenAI / Anthropic ``sk-…``, Google ``AIza…`` and
``ya29.…``, Hugging Face ``hf_…``, Stripe ``sk_live_…``), code-host tokens (GitHub ``ghp_…`` and
``github_pat_…``, GitLab ``glpat-…``, npm), Slack and AWS tokens, bearer / basic credentials, bare
JWTs, private-key blocks, the password in a URL (``postgresql://user:***@host``) and ``name=value``
/ ``"name": "value"`` forms whose name says secret (``api_key``, ``aws_secret_access_key``,
``password``, ``token`` …). A dict entry whose *key* names a secret (``api_key``,
``authorization``, ``password``, ``token`` …) has its whole value replaced. One module, so the
tracer, the HTTP server and its logs mask exactly the same things.

Text is masked before it is cut to a length (:func:`redact_then_cut`): a key cut in half at the
limit would no longer look like a key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "[REDACTED]"

SECRET_KEYS = re.compile(
    r"(api[_-]?key|apikey|authorization|auth[_-]?token|access[_-]?token|refresh[_-]?token|"
    r"secret|password|passwd|passphrase|private[_-]?key|access[_-]?key|client[_-]?secret|cookie|"
    r"x-api-key|credential|(?:^|[_\-.])(?:token|pwd)$)",
    re.IGNORECASE,
)
"""Dict keys whose values are secrets as a whole (``input_tokens`` is not one: a count, not a token)."""

_SECRET_NAME = (
    r"(?:api[_\-]?key|apikey|secret(?:[_\-]?(?:access[_\-]?)?key)?|access[_\-]?key|private[_\-]?key|"
    r"passw(?:or)?d|pwd|passphrase|(?:access|auth|refresh|id|session)?[_\-]?token|credentials?)"
)

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A private key in PEM form, to its END line (or the end of the text, when cut off).
    (
        re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)"),
        "-----BEGIN PRIVATE KEY-----***",
    ),
    # The password of a URL: scheme://user:password@host
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"), r"\1***@"),
    # OpenAI-style keys: sk-..., sk-proj-..., sk-ant-... (Anthropic) …
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    # Stripe secret and restricted keys
    (re.compile(r"\b([sr]k_(?:live|test)_)[A-Za-z0-9]{8,}"), r"\1***"),
    # Authorization header values ("Basic" as headers write it: "a basic question" is prose)
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}"), r"\1\2***"),
    (re.compile(r"\b(Basic|BASIC)(\s+)[A-Za-z0-9+/]{8,}={0,2}"), r"\1\2***"),
    # A JSON Web Token on its own: header.payload.signature, both first parts JSON ("eyJ")
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), "eyJ***"),
    # Google API keys and OAuth tokens, GitHub / GitLab / npm / Hugging Face / Slack tokens, AWS key ids
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), "ya29.***"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), "github_pat_***"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "gh*_***"),
    (re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"), "glpat-***"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{30,}"), "npm_***"),
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "hf_***"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), "xox*-***"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), r"\1***"),
    # name=value / "name": "value" forms of things named like secrets (aws_secret_access_key=…,
    # OPENAI_API_KEY=…, token=…). The name may follow a prefix (OPENAI_, aws_), not a letter.
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9])({_SECRET_NAME}['\"]?\s*[:=]\s*['\"]?)[^\s'\",;&}}]{{4,}}"),
        r"\1***",
    ),
)

_MAYBE = re.compile(
    r"(?i)sk[-_]|rk_|bearer|basic|eyj|aiza|ya29\.|github_pat_|gh[pousr]_|glpat-|npm_|hf_|xox|akia|asia|"
    r"://|-----begin|key|secret|passw|pwd|token|credential"
)
"""Something every pattern above needs: one scan tells that most text (names, prose, numbers) holds
no secret, instead of one scan per pattern."""

CUT_SPAN = 256
"""How far past a cut :func:`redact_then_cut` looks, so a secret across the cut is still seen whole."""


def redact_text(text: str) -> str:
    """``text`` with credential-looking strings masked (see the module docstring). It errs on the
    side of masking."""
    if _MAYBE.search(text) is None:
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def redact_then_cut(text: str, max_chars: int, redact: Callable[[str], str] = redact_text) -> str:
    """``text`` redacted, then cut to ``max_chars`` with a note of its length. Redacting first means
    a secret that straddles the cut is masked, not left half-visible; only ``max_chars`` plus a
    margin is redacted, so a 10 MB string costs no more than a short one (all of it, when masks
    shrank the margin away)."""
    if len(text) <= max_chars:
        return redact(text)
    head = redact(text[: max_chars + CUT_SPAN])
    if len(head) < max_chars + CUT_SPAN // 2:  # masks took up the margin: what follows the cut may show
        head = redact(text)
    return head[:max_chars] + f"… [{len(text)} chars]"


class Redactor:
    """Masks secrets in JSON-like values (dicts, lists, strings). ``patterns`` are extra regular
    expressions whose matches in text are replaced by ``[REDACTED]``."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        patterns = list(patterns)
        self._extra = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def text(self, value: str) -> str:
        value = redact_text(value)
        return self._extra.sub(MASK, value) if self._extra is not None else value

    def cut(self, value: str, max_chars: int) -> str:
        """:meth:`text`, then cut to ``max_chars`` (see :func:`redact_then_cut`)."""
        return redact_then_cut(value, max_chars, self.text)

    @staticmethod
    def hides(key: object, value: object) -> bool:
        """Whether a dict entry's value is replaced whole because its key names a secret."""
        return isinstance(key, str) and SECRET_KEYS.search(key) is not None and value not in (None, "")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): MASK if self.hides(k, v) else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


default_redactor = Redactor()


# ------------------------------------------------------------------------------ log records
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
