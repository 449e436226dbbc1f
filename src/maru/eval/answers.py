"""Answer metrics against reference answers: exact match, token F1 and contains (SQuAD's definitions).

Text is normalised as SQuAD's evaluation does — lower case, punctuation removed, the English
articles a/an/the dropped, whitespace collapsed — after Unicode NFKC, so composed and decomposed
Hangul compare equal. Tokens are the whitespace-separated words of that text, in every language:
for Korean this means that a word with a particle attached (``서울에서``) is another token than the
bare word (``서울``), so token F1 under-counts partial Korean answers (KorQuAD's own script has the
same limit); ``contains`` is the lenient measure there. Each metric takes the best over the
references.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

__all__ = ["answer_scores", "contains", "exact_match", "normalize", "token_f1", "tokens"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation) | frozenset("‘’“”·…「」『』《》〈〉()、。，！？：；")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no English articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if c in _PUNCTUATION else c for c in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def exact_match(prediction: str, references: Sequence[str]) -> float:
    said = normalize(prediction)
    return float(any(said == normalize(ref) for ref in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """The best F1 of shared tokens (counted with multiplicity) over the references."""
    said = tokens(prediction)
    best = 0.0
    for ref in references:
        wanted = tokens(ref)
        common = sum((Counter(said) & Counter(wanted)).values())
        if common:
            precision, recall = common / len(said), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains(prediction: str, references: Sequence[str]) -> float:
    """1 when some normalised reference is a substring of the normalised answer (so ``서울`` is
    found in ``서울에서``)."""
    said = normalize(prediction)
    return float(any(ref and ref in said for ref in map(normalize, references)))


def answer_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Every answer metric of one question, by the names experiments store."""
    return {
        "exact_match": exact_match(prediction, references),
        "f1": token_f1(prediction, references),
        "contains": contains(prediction, references),
    }
