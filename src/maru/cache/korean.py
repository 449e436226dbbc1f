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
- **what is asked**: the interrogatives, by what they ask for (``누구`` who, ``언제``/``몇 년`` when,
  ``어디`` where, ``무엇``/``어떤``/``어느`` what, ``몇``/``얼마`` how much, ``왜``, ``어떻게``), and
  the noun a question ends on before its topic particle (``면적은?`` ≠ ``고도는?``).
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
_ASKS = {
    "누구": "who", "무엇": "what", "뭐": "what", "무슨": "what", "어떤": "what", "어느": "what",
    "어디": "where", "언제": "when", "왜": "why", "어떻": "how",
    "몇": "how much", "얼마": "how much", "얼마나": "how much",
}  # fmt: skip
_TIME_COUNTERS = frozenset({"년", "년도", "해", "월", "일", "시", "시기"})


@dataclass(frozen=True)
class KoreanFeatures:
    negations: tuple[str, ...]
    entities: tuple[str, ...]  # sorted: Korean word order is free
    nouns: frozenset[str]
    asks: frozenset[str]  # what the interrogatives ask for: who, what, when, how much …
    asked_noun: str  # "X는?" / "X는 무엇인가요?": the X asked about ("" when there is none)


@cache
def available() -> bool:
    """True when kiwipiepy is installed, so Korean questions can be guarded (asked once)."""
    return _kiwi.available()


@lru_cache(maxsize=4096)
def features(text: str) -> KoreanFeatures:
    """The negation morphemes, entities, nouns and interrogatives of ``text`` (memoised: a cached
    question is compared with many asked ones)."""
    tokens = _kiwi.tokenize(text)
    negations: list[str] = []
    entities: list[str] = []
    nouns: set[str] = set()
    asks: set[str] = set()
    for i, (form, tag) in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if (form, tag) in _NEGATING and not (tag == "VCN" and following == ("면", "EC")):
            negations.append(form)
        if tag in ("NNP", "SH"):
            role = following[0] if following[0] in _ROLE_PARTICLES else ""
            entities.append(form.casefold() + role)
        if tag in _NOUN_TAGS:
            nouns.add(form)
        if form in _ASKS and tag in ("NP", "MM", "MAG", "NNG", "NR", "VA-I"):
            asks.add("when" if form == "몇" and following[0] in _TIME_COUNTERS else _ASKS[form])
    return KoreanFeatures(
        tuple(negations),
        tuple(sorted(entities)),
        frozenset(nouns),
        frozenset(asks),
        _asked_noun(tokens),
    )


_AFTER_TOPIC = frozenset({"NP", "MM", "VCP", "EF", "EC", "JX", "SF", "SP", "SW"})


def _asked_noun(tokens: list[tuple[str, str]]) -> str:
    """The noun of a question that ends on it and a topic particle ("면적은?", "면적은 얼마야?"):
    "티베트 고원의 면적은?" and "티베트 고원의 고도는?" ask for different things."""
    for i in range(len(tokens) - 1, 0, -1):
        form, tag = tokens[i]
        if tag == "JX" and form in ("은", "는"):
            noun = tokens[i - 1]
            if noun[1] == "XSN" and i >= 2:  # 수상 + 자: the noun with its suffix
                return tokens[i - 2][0] + noun[0]
            return noun[0] if noun[1].startswith("NN") else ""
        if tag not in _AFTER_TOPIC and form not in _ASKS:
            return ""
    return ""


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
