"""The semantic cache's guard: refuse to reuse an answer for a question that embeds close to a cached
one but asks something else.

Sentence embeddings are poor at exactly the differences that change an answer completely: "Is X
safe?" and "Is X not safe?" embed almost alike, as do "sales in 2023" and "sales in 2024", "the
capital of France" and "the capital of Spain", "한국의 수도는?" and "일본의 수도는?" (cosine 0.92 with
multilingual-e5-small), or "Why did Harvard end early admission?" and "In what year did Harvard
end early admission?" (0.985). :func:`compatible` compares four features of the two questions and
refuses the match when any of them differs. How a feature is read depends on the script:

**Which questions can be guarded.** Latin-script text is read with the English rules below; Hangul
with Kiwi's morphemes (:mod:`maru.cache.korean`; kiwipiepy is in the ``cache`` extra), hanja inside
Korean text included. Any other script (Japanese kana, Chinese, Thai, Cyrillic, Arabic …) has no
reader here, and neither has Hangul without kiwipiepy: :func:`unguarded` names why, and
:func:`compatible` refuses every match involving such a question, since nothing can tell its
negations or names apart. Digits, punctuation and symbols belong to no script.

**Negation** — the number of negation markers.
  English: ``not``, ``no``, ``never``, ``none``, ``nothing``, ``nobody``, ``nowhere``, ``neither``,
  ``nor``, ``without``, ``cannot`` and any ``n't`` contraction. Korean, by morpheme: ``안``, ``못``,
  ``-지 않-``, ``-지 못하-``, ``-지 마-``, ``없-``, ``아니-`` (not ``아니면``), ``모르-``, and the prefixes
  ``불-``/``비-``/``미-``/``무-`` (``불가능``, ``비공개``); a noun that is another question's noun under
  such a prefix (``미성년``/``성년``, ``무료``/``유료``) counts as a flip too.

**Numbers** — the sequence of numbers, after normalising their spelling: digits with decimal
  points and thousands separators (``1,000`` = ``1000``), a multiplier glued to or following them
  (``3만`` = ``30000``, ``2.5 million``, ``5천``), digits glued to Hangul (``제1차``, ``노트5``;
  glued to Latin letters they are part of a name, ``v2``), English number words (``zero`` … ``twenty``, tens,
  ``hundred`` …, ordinals ``first`` … ``tenth``) and Korean native numerals (``하나`` … ``열``,
  ``첫째`` … ``넷째`` on their own, ``한/두/세/네/첫 …`` before a counter such as 개, 명, 번, 시, 살).
  Years are numbers: "2023" ≠ "2024". The order matters ("from 3 to 10" ≠ "from 10 to 3").

**What is asked** — when both questions have a specific question word, what they ask for must
  agree: who, when (what year, ``언제``, ``몇 년``), where, why, how, how much (how many, ``몇``,
  ``얼마``); "what" (which, ``무엇``, ``어떤``) can ask for anything ("What were the sales?" = "How
  much did we sell?") and agrees with all. English: the first question word; Korean: each
  interrogative (:func:`asks`), and the noun a question ends on ("티베트 고원의 면적은?" ≠ "티베트
  고원의 고도는?").

**Named entities** — (a) quoted strings (``"…"``, ``'…'``, ``“…”``, ``「…」``, backticks);
  (b) in Latin text, words with a capital letter or a digit (``France``, ``NASA``, ``iPhone``,
  ``GPT-4o``, ``internet2``),
  except the first word of a sentence when it is a common sentence opener (``What``, ``Is``,
  ``Tell``, ``Please``, ``I`` …), compared in order of first appearance ("Seoul to Tokyo" ≠ "Tokyo
  to Seoul"); (c) in a question that contains Hangul, every Latin word (``python``, ``aws``) and
  Kiwi's proper nouns (``NNP``: 한국, 서울, 이순신) and hanja, each with a route particle
  (``서울에서``/``부산까지``), compared as a set since Korean word order is free. Entities compare
  case-insensitively, without a possessive ``'s``. Not caught: lowercase names in English ("capital
  of spain") and names Kiwi does not know as proper nouns — for those the embedding threshold is
  the only defence.

The guard errs on the side of refusing: a refusal costs one model call, a wrong match returns a
wrong answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from . import korean

__all__ = ["asks", "compatible", "entities", "negations", "numbers", "prepare", "unguarded"]

# --------------------------------------------------------------------------- scripts
_GUARDED_SCRIPTS = frozenset({"LATIN", "HANGUL"})
_SCRIPT_NAMES = {
    "CJK": "Chinese or Japanese (Han)", "HIRAGANA": "Japanese (kana)", "KATAKANA": "Japanese (kana)",
    "KATAKANA-HIRAGANA": "Japanese (kana)",
    "BOPOMOFO": "Chinese (bopomofo)",
}  # fmt: skip
_HANGUL = re.compile(r"[가-힣ᄀ-ᇿ㄰-㆏]")
_PLAIN_ASCII = re.compile(r"[\x00-\x7f]*")


def _scripts(text: str) -> set[str]:
    """The scripts of the letters in ``text``, by the first word of their Unicode names."""
    if _PLAIN_ASCII.fullmatch(text):
        return {"LATIN"} if any(c.isalpha() for c in text) else set()
    return {
        unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
        for ch in unicodedata.normalize("NFKC", text)
        if ch.isalpha()
    }


def unguarded(text: str) -> str | None:
    """Why the guard cannot read ``text`` (a script it has no rules for, or Korean without
    kiwipiepy), or ``None`` when it can."""
    scripts = _scripts(text)
    if "HANGUL" in scripts:
        if not korean.available():
            return "Korean text is guarded with kiwipiepy, which is not installed: pip install 'maru[cache]'"
        scripts.discard("CJK")  # hanja inside Korean text: Kiwi reads them
    others = sorted(scripts - _GUARDED_SCRIPTS)
    if not others:
        return None
    names = ", ".join(dict.fromkeys(_SCRIPT_NAMES.get(s, s.title()) for s in others))
    return f"no guard reads {names} text (only English/Latin and Korean)"


# --------------------------------------------------------------------------- negation
_EN_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|nowhere|neither|nor|without|cannot)\b|\w+n['’]t\b",
    re.IGNORECASE,
)


def negations(text: str) -> list[str]:
    """The negation markers found in ``text``: English words, then Korean morphemes."""
    found = [m.group(0).lower() for m in _EN_NEGATION.finditer(text)]
    if _HANGUL.search(text):
        found += korean.features(text).negations
    return found


# --------------------------------------------------------------------------- numbers
_WORD_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "half": 0.5, "dozen": 12,
    # Korean native numerals standing alone
    "하나": 1, "둘": 2, "셋": 3, "넷": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9,
    "열": 10, "스물": 20, "서른": 30, "마흔": 40, "쉰": 50,
    "첫째": 1, "둘째": 2, "셋째": 3, "넷째": 4,
}  # fmt: skip
_KO_ADNOMINAL = {
    "첫": 1,
    "한": 1,
    "두": 2,
    "세": 3,
    "네": 4,
    "다섯": 5,
    "여섯": 6,
    "일곱": 7,
    "여덟": 8,
    "아홉": 9,
    "열": 10,
    "스무": 20,
}
_KO_COUNTERS = "개|명|번|시|살|마리|권|잔|병|장|대|달|주|군데|가지|사람|송이|켤레|벌|채"
_MULTIPLIERS = {
    "천": 10**3, "만": 10**4, "억": 10**8, "조": 10**12,
    "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12,
    "k": 10**3,
}  # fmt: skip
_NUMBER = re.compile(
    # a digit run (1,000.5 / 1.000 / 2023 / .5) with an optional multiplier
    # (glued to Hangul it is still a number: 제1차, 징역1년, 노트5; glued to Latin it is a name: v2)
    r"(?P<digits>(?<![A-Za-z0-9_.])\d+(?:[,]\d{3})*(?:\.\d+)?|(?<![A-Za-z0-9_.])\.\d+)"
    r"(?:\s?(?P<mult>thousand|million|billion|trillion)\b|(?P<kmult>천|만|억|조)|(?P<k>k)\b)?"
    # Korean adnominal numeral before a counter: 두 개, 세 시, 한 명
    rf"|(?<![가-힣])(?P<adn>{'|'.join(_KO_ADNOMINAL)})\s?(?={_KO_COUNTERS})"
    # a number word
    rf"|(?<![\w])(?P<word>{'|'.join(sorted(_WORD_NUMBERS, key=len, reverse=True))})(?![\w])",
    re.IGNORECASE,
)


def _normal(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def numbers(text: str) -> list[str]:
    """The numbers in ``text``, normalised (``"1,000"`` and ``"1000"`` both give ``"1000"``,
    ``"3만"`` gives ``"30000"``), in order."""
    found: list[str] = []
    for m in _NUMBER.finditer(text):
        if m.group("digits") is not None:
            value = float(m.group("digits").replace(",", ""))
            mult = m.group("mult") or m.group("kmult") or m.group("k")
            if mult:
                value *= _MULTIPLIERS[mult.lower()]
        elif m.group("adn") is not None:
            value = _KO_ADNOMINAL[m.group("adn")]
        else:
            value = _WORD_NUMBERS[m.group("word").lower()]
        found.append(_normal(value))
    return found


# --------------------------------------------------------------------------- named entities
_OPENERS = """
    a an the this that these those it its i i'm i've i'd i'll my me we our you your he she his her
    they their there here what what's which who who's whom whose when where where's why how how's
    is are was were be been am do does did don't doesn't didn't can could should would will shall
    may might must have has had isn't aren't wasn't weren't can't couldn't shouldn't wouldn't won't
    please tell give show list explain describe compare summarize summarise write find translate
    define name let let's help make create calculate convert suggest recommend provide
    in on at for of to from by with about after before during if and or but so then also now
    hi hello hey thanks thank ok okay yes no not any some all each every
"""
_SENTENCE_OPENERS = frozenset(_OPENERS.split())
_QUOTED = re.compile(
    r'"([^"\n]+)"|“([^”\n]+)”|‘([^’\n]+)’|「([^」\n]+)」|『([^』\n]+)』|`([^`\n]+)`'
    r"|(?<!\w)'([^'\n]+)'(?!\w)"
)
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.+'’][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"[.!?。！？\n]\s*$")


def _strip_possessive(word: str) -> str:
    for suffix in ("'s", "’s", "'", "’"):
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)]
    return word


def entities(text: str) -> list[str]:
    """The named entities seen in ``text`` (case-folded, first appearances, in order; Korean
    proper nouns last). See the module docstring for the rules."""
    found: list[str] = []

    def add(value: str) -> None:
        value = " ".join(value.split()).casefold()
        if value and value not in found:
            found.append(value)

    for m in _QUOTED.finditer(text):
        add(next(g for g in m.groups() if g is not None))
    unquoted = _QUOTED.sub(" ", text)
    hangul = _HANGUL.search(text) is not None
    for m in _LATIN_WORD.finditer(unquoted):
        word = _strip_possessive(m.group(0))
        if hangul:
            add(word)
            continue
        if not any(c.isupper() or c.isdigit() for c in word):
            continue
        before = unquoted[: m.start()]
        sentence_start = not before.strip() or _SENTENCE_END.search(before) is not None
        if sentence_start and word.lower() in _SENTENCE_OPENERS:
            continue
        if word == "I" or word.lower() in ("i'm", "i've", "i'd", "i'll"):
            continue
        add(word)
    if hangul:
        for entity in korean.features(text).entities:
            add(entity)
    return found


# --------------------------------------------------------------------------- what is asked
_EN_ASKS = re.compile(
    r"\b(?:in\s+)?(?P<time>(?:what|which)\s+(?:year|date|day|month|century|decade|time))\b"
    r"|\bhow\s+(?P<much>many|much)\b"
    r"|\b(?P<wh>who|whom|whose|what|which|when|where|why|how)\b",
    re.IGNORECASE,
)
_EN_WH = {"whom": "who", "whose": "who", "which": "what"}


def asks(text: str) -> list[str]:
    """What ``text`` asks for — ``who``, ``what``, ``when``, ``where``, ``why``, ``how``, ``how
    much`` — as far as its question words tell: the first one in English ("What year" and "When"
    both ask when), each one in Korean. Empty when it has none ("Tell me France's capital")."""
    found: list[str] = []
    m = _EN_ASKS.search(text)
    if m is not None:
        wh = (m.group("wh") or "").lower()
        found.append(
            "when" if m.group("time") else "how much" if m.group("much") else _EN_WH.get(wh, wh)
        )
    if _HANGUL.search(text):
        found += sorted(korean.features(text).asks)
    return found


# --------------------------------------------------------------------------- the guard
def _show(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]" if items else "none"


def prepare(text: str) -> None:
    """Read ``text`` ahead (Korean analysis is memoised), so that comparing it later is quick —
    the semantic cache compares under its lock."""
    if _HANGUL.search(text):
        korean.features(text)


def _differs(what: str, a: Sequence[str], b: Sequence[str]) -> str:
    return f"{what}: {_show(a)} vs {_show(b)}"


def _asked_noun(text: str) -> str:
    return korean.features(text).asked_noun if _HANGUL.search(text) else ""


def _korean_flip(question_a: str, question_b: str) -> str | None:
    if not (_HANGUL.search(question_a) and _HANGUL.search(question_b)):
        return None
    noun = korean.prefix_flip(korean.features(question_a), korean.features(question_b))
    return None if noun is None else f"negation differs: {noun} (a negating prefix)"


def compatible(question_a: str, question_b: str) -> tuple[bool, str]:
    """Whether an answer to ``question_a`` may be reused for ``question_b``, as far as negation,
    numbers and named entities tell. Returns ``(True, "")`` or ``(False, reason)``; a question
    the guard cannot read (:func:`unguarded`) is never compatible."""
    for question in (question_a, question_b):
        why = unguarded(question)
        if why is not None:
            return False, why
    neg_a, neg_b = negations(question_a), negations(question_b)
    if len(neg_a) != len(neg_b):
        return False, _differs("negation differs", neg_a, neg_b)
    flip = _korean_flip(question_a, question_b)
    if flip is not None:
        return False, flip
    num_a, num_b = numbers(question_a), numbers(question_b)
    if num_a != num_b:
        return False, _differs("numbers differ", num_a, num_b)
    asks_a, asks_b = asks(question_a), asks(question_b)
    specific_a, specific_b = set(asks_a) - {"what"}, set(asks_b) - {"what"}  # "what" asks anything
    if specific_a and specific_b and specific_a != specific_b:
        return False, _differs("asks for something else", asks_a, asks_b)
    noun_a, noun_b = _asked_noun(question_a), _asked_noun(question_b)
    if noun_a and noun_b and not (noun_a.endswith(noun_b) or noun_b.endswith(noun_a)):  # 역법 ~ 법
        return False, _differs("asks for something else", [noun_a], [noun_b])
    ent_a, ent_b = entities(question_a), entities(question_b)
    if ent_a != ent_b:
        if sorted(ent_a) != sorted(ent_b):
            return False, _differs("named entities differ", ent_a, ent_b)
        if not (_HANGUL.search(question_a) or _HANGUL.search(question_b)):  # Korean order is free
            return False, _differs("named entities in another order", ent_a, ent_b)
    return True, ""
