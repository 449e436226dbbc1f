"""Citation correctness: does each ``[n]`` of an answer point at a passage that supports it?

Measured without a model. The answer is cut at its markers: the claim of a group of markers
(``[1]``, ``[2][3]``) is the text between the previous group (or the start) and it, so both
"Claim [1]." and the extractive "Claim. [1]" give the claim its own marker. A marker is correct
when ``n`` names a passage given to the writer and at least ``threshold`` (default 0.5) of the
claim's content words occur in passage ``n``. Words are the normalised tokens of
:mod:`maru.eval.answers` without English stop words and one-letter tokens; a non-ASCII word also
counts as found when it is in the passage without its last one or two characters (Korean particles:
``서울에서`` is found in a passage that says ``서울은``). The score is correct markers / markers;
an answer without markers is not scored (``None``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .answers import normalize

__all__ = ["SUPPORT_THRESHOLD", "CitationCheck", "check_citations"]

SUPPORT_THRESHOLD = 0.5
_GROUP = re.compile(r"(?:\s*\[\d+\])+")
_NUMBER = re.compile(r"\[(\d+)\]")
_STOP = frozenset(
    ["and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "has", "have", "he", "her", "his", "in", "is", "it", "its", "of", "on", "or", "she", "that", "the", "their", "there", "they", "this", "to", "was", "were", "which", "who", "will", "with", "not", "no", "yes"]
)


@dataclass(frozen=True, slots=True)
class CitationCheck:
    n: int
    claim: str
    overlap: float
    supported: bool


def check_citations(
    answer: str, passages: Sequence[str], threshold: float = SUPPORT_THRESHOLD
) -> tuple[float | None, list[dict[str, Any]]]:
    """The share of the answer's markers whose passage supports their claim, and one record per
    marker (``n``, ``claim``, ``overlap``, ``supported``); ``passages[n - 1]`` is passage ``n``."""
    checks = [_check(n, claim, passages, threshold) for n, claim in _claims(answer)]
    if not checks:
        return None, []
    return sum(c.supported for c in checks) / len(checks), [asdict(c) for c in checks]


def _claims(answer: str) -> list[tuple[int, str]]:
    """(marker number, claim text) for each marker, in order."""
    found: list[tuple[int, str]] = []
    start = 0
    for group in _GROUP.finditer(answer):
        claim = answer[start : group.start()].strip(" .")
        found.extend((int(n), claim) for n in _NUMBER.findall(group.group()))
        start = group.end()
    return found


def _check(n: int, claim: str, passages: Sequence[str], threshold: float) -> CitationCheck:
    if not 1 <= n <= len(passages):
        return CitationCheck(n, claim, 0.0, False)
    words = [w for w in normalize(claim).split() if len(w) > 1 and w not in _STOP]
    if not words:
        return CitationCheck(n, claim, 0.0, False)
    text = normalize(passages[n - 1])
    vocabulary = set(text.split())
    overlap = sum(_found(w, text, vocabulary) for w in words) / len(words)
    return CitationCheck(n, claim, round(overlap, 4), overlap >= threshold)


def _found(word: str, text: str, vocabulary: set[str]) -> bool:
    """An ASCII word as a whole word of the passage; any other also as a substring, whole or without
    a one- or two-character ending (scripts without spaces, Korean particles)."""
    if word in vocabulary:
        return True
    if word.isascii():
        return False
    return any(len(word) - cut >= 2 and word[: len(word) - cut] in text for cut in (0, 1, 2))
