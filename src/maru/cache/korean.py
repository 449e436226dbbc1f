"""What the guard reads in a Korean question, by morpheme (Kiwi, through :mod:`maru._kiwi`).

Korean is written without spaces between a word and its particles or endings, so patterns on the
surface miss most of what matters: ``불가능`` is ``불`` + ``가능``, ``먹지 않았다`` hides ``않``, a
name is glued to its particle (``일본의``). Kiwi splits a question into tagged morphemes; from them:

- **negations**: ``안``/``못`` (adverbs), ``않``/``못하``/``말`` (auxiliaries: -지 않다, -지 못하다,
  -지 마세요), ``없`` (없다, 없이), ``아니`` (but not ``아니면``, "or else"), ``모르`` (not know), and
  the negating prefixes ``불-``/``비-``/``미-``/``무-`` when Kiwi splits them off (``불가능``,
  ``비공개``, ``미확인``). Where a prefixed word is in the dictionary as one noun (``무료``,
  ``미성년``), :func:`prefix_flip` compares the two questions' nouns instead.
- **entities**: proper nouns (``NNP``: 일본, 서울, 이순신), hanja (``SH``), each with the case particle
  that gives it a role in a route (``서울에서``/``부산까지`` ≠ ``부산에서``/``서울까지``); Latin words and
  quoted strings come from the language-neutral rules in :mod:`maru.cache.guard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

from .. import _kiwi

__all__ = ["KoreanFeatures", "available", "features", "prefix_flip"]

_NEGATING = {
    ("안", "MAG"), ("못", "MAG"), ("없이", "MAG"),
    ("않", "VX"), ("못하", "VX"), ("말", "VX"),
    ("없", "VA"), ("아니", "VCN"), ("모르", "VV"),
    ("불", "XPN"), ("비", "XPN"), ("미", "XPN"), ("무", "XPN"),
}  # fmt: skip
_NEGATING_PREFIXES = "불비미무"
_ROLE_PARTICLES = frozenset({"에서", "까지", "부터", "로", "으로", "에게", "한테", "에"})
_NOUN_TAGS = ("NNG", "NNP", "XR")


@dataclass(frozen=True)
class KoreanFeatures:
    negations: tuple[str, ...]
    entities: tuple[str, ...]  # sorted: Korean word order is free
    nouns: frozenset[str]


@cache
def available() -> bool:
    """True when kiwipiepy is installed, so Korean questions can be guarded (asked once)."""
    return _kiwi.available()


@lru_cache(maxsize=4096)
def features(text: str) -> KoreanFeatures:
    """The negation morphemes, entities and nouns of ``text`` (memoised: a cached question is
    compared with many asked ones)."""
    tokens = _kiwi.tokenize(text)
    negations: list[str] = []
    entities: list[str] = []
    nouns: set[str] = set()
    for i, (form, tag) in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if (form, tag) in _NEGATING and not (tag == "VCN" and following == ("면", "EC")):
            negations.append(form)
        if tag in ("NNP", "SH"):
            role = following[0] if following[0] in _ROLE_PARTICLES else ""
            entities.append(form.casefold() + role)
        if tag in _NOUN_TAGS:
            nouns.add(form)
    return KoreanFeatures(tuple(negations), tuple(sorted(entities)), frozenset(nouns))


def prefix_flip(a: KoreanFeatures, b: KoreanFeatures) -> str | None:
    """A noun of one question that is a noun of the other under a negating prefix (``무료`` /
    ``료``, ``미성년`` / ``성년``) or with ``유-`` turned into ``무-`` (``유료`` / ``무료``)."""
    for one, other in ((a.nouns, b.nouns), (b.nouns, a.nouns)):
        for noun in one - other:
            if len(noun) < 2 or noun[0] not in _NEGATING_PREFIXES:
                continue
            rest = noun[1:]
            if rest in other or (noun[0] == "무" and "유" + rest in other):
                return noun
            if len(rest) >= 2 and any(n.startswith(rest) for n in other):  # 미성년 / 성년자
                return noun
    return None
