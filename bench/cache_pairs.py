"""Question pairs for measuring the semantic cache: should the answer cached for ``stored`` be
reused for ``asked``? Built from real questions (KorQuAD 1.0 dev, XQuAD English) by fixed rules,
with a fixed seed, so every run measures the same pairs.

Kinds of pair (``same`` is whether the cached answer is right for the asked question):

- ``paraphrase`` (same): a light rewrite of one real question: up to two of these rules, one
  after another, then one time in two the question mark dropped. Korean: a change of ending
  (``무엇인가?`` → ``뭐야?`` / ``무엇인가요?``, ``누구인가?`` → ``누구야?``, ``…는가?`` → ``…나요?``,
  ``…은?`` → ``…은 무엇인가요?`` …), the first two arguments swapped (``차범근이 독일에서 …`` →
  ``독일에서 차범근이 …``, Korean word order is free). English: a contraction (``What is`` →
  ``What's``), ``In what year`` ↔ ``What year``, ``What country`` → ``Which country``, a polite
  prefix (``Please tell me, what …``), lower case.
- ``different`` (not same): two real questions about the same paragraph with different answers —
  same topic, same names, so they embed close.
- ``entity`` (not same): a real question whose article title or country/city name is swapped for
  another one (``한국`` → ``일본``, ``Warsaw`` → ``Kenya``).
- ``number`` (not same): a real question with its first number changed (``2017년`` → ``2018년``).
- ``negation`` (not same): a real question negated by rule. Korean: ``있는가`` → ``없는가``,
  ``가능`` → ``불가능``, ``발표한`` → ``발표하지 않은``, ``…인가?`` → ``…이 아닌가?``, ``안``/``못``
  before the final verb. English: the first auxiliary negated (``was`` → ``wasn't``, ``did`` →
  ``did not``).

Japanese (``ja``) has no guard (no analyser for its script); a few hand-written pairs of each kind
show the cache refusing its semantic hits.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KORQUAD = DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"
XQUAD_EN = DATA / "xquad_en" / "xquad.en.json"
PER_KIND = 150  # pairs of each kind per language (fewer when the rules apply to fewer questions)
SEED = 20261203


@dataclass(frozen=True)
class Pair:
    lang: str
    kind: str
    stored: str
    asked: str

    @property
    def same(self) -> bool:
        return self.kind == "paraphrase"


@dataclass(frozen=True)
class Question:
    title: str
    paragraph: int
    text: str
    answer: str


def load(path: Path) -> list[Question]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    out: list[Question] = []
    paragraph = 0
    for article in data:
        title = re.sub(r"_\(.*\)$", "", article["title"]).replace("_", " ")
        for p in article["paragraphs"]:
            paragraph += 1
            for qa in p["qas"]:
                text = " ".join(qa["question"].split())
                out.append(Question(title, paragraph, text, qa["answers"][0]["text"]))
    return out


# --------------------------------------------------------------------------- rewrites, by rule
Rule = Callable[[str], "str | None"]


def _sub(pattern: str, repl: str | Callable[[re.Match[str]], str]) -> Rule:
    compiled = re.compile(pattern)

    def rule(text: str) -> str | None:
        new = compiled.sub(repl, text, count=1)
        return new if new != text else None

    return rule


KO_PARAPHRASE: list[Rule] = [
    _sub(r"무엇인가\s?\?$", "뭐야?"),
    _sub(r"무엇인가\s?\?$", "무엇인가요?"),
    _sub(r"무엇인가\s?\?$", "무엇입니까?"),
    _sub(r"누구인가\s?\?$", "누구야?"),
    _sub(r"누구인가\s?\?$", "누구인가요?"),
    _sub(r"어디인가\s?\?$", "어디야?"),
    _sub(r"언제인가\s?\?$", "언제인가요?"),
    _sub(r"([가-힣])는가\s?\?$", r"\1나요?"),
    _sub(r"([가-힣])인가\s?\?$", r"\1인가요?"),
    _sub(r"([가-힣])나\s?\?$", r"\1나요?"),
    _sub(r"([가-힣])(은|는)\s?\?$", r"\1\2 무엇인가요?"),
    _sub(r"([가-힣])(은|는)\s?\?$", r"\1\2 뭐야?"),
    _sub(r"^(\S+(?:은|는|이|가|을|를|에서|에게)) (\S+(?:은|는|이|가|을|를|에서|에게)) ", r"\2 \1 "),
]
EN_PARAPHRASE: list[Rule] = [
    _sub(r"^What is ", "What's "),
    _sub(r"^Who is ", "Who's "),
    _sub(r"^Where is ", "Where's "),
    _sub(r"^In what year ", "What year "),
    _sub(r"^What year ", "In what year "),
    _sub(r"^What (year|country|city|type|kind|company|team|group|part|event) ", r"Which \1 "),
    _sub(r"^(What|Who|Where|When|Which|How) ", lambda m: f"Please tell me, {m.group(1).lower()} "),
    _sub(r"^(What|Who|Where|When|Which|How)(.*)\?$", lambda m: m.group(1).lower() + m.group(2)),
]

KO_PLACES = ["한국", "일본", "중국", "미국", "영국", "프랑스", "독일", "러시아", "북한", "이탈리아",
             "스페인", "서울", "부산", "도쿄", "베를린", "파리", "런던"]  # fmt: skip
EN_PLACES = ["America", "Britain", "England", "France", "Germany", "China", "Japan", "Russia",
             "Poland", "California", "London", "Paris", "Europe", "India", "Africa", "Italy",
             "Spain", "Kenya", "Chicago", "Australia"]  # fmt: skip

KO_NEGATION: list[Rule] = [
    _sub(r"있(는가|나|었는가|었나|습니까)", r"없\1"),
    _sub(r"(?<!불)가능", "불가능"),
    _sub(r"([가-힣]{2,})한 ", r"\1하지 않은 "),
    _sub(r"([가-힣]{2,})된 ", r"\1되지 않은 "),
    _sub(r"([가-힣])인가\s?\?$", r"\1이 아닌가?"),
    _sub(r" ([가-힣]+(?:했|하였|되었|었|았|였)(?:는가|나)\s?\?)$", r" 안 \1"),
    _sub(r" ([가-힣]+(?:할 수 있|하는)(?:는가|가|나)\s?\?)$", r" 못 \1"),
]
EN_NEGATION: list[Rule] = [
    _sub(r"\b(is|was|were|are|does|has|had)\b(?!['’]|n['’]t)", r"\1n't"),
    _sub(r"\b(did|do|could|can|would|should)\b(?!['’]|n['’]t)", r"\1 not"),
]


def _first(rules: list[Rule], text: str, rng: random.Random) -> str | None:
    """One applicable rule, picked at random."""
    for rule in rng.sample(rules, len(rules)):
        new = rule(text)
        if new is not None:
            return " ".join(new.split())
    return None


def _several(rules: list[Rule], text: str, rng: random.Random, most: int = 3) -> str | None:
    """Up to ``most`` applicable rules one after another, in a random order (each at most once)."""
    changed, applied = text, 0
    for rule in rng.sample(rules, len(rules)):
        new = rule(changed)
        if new is not None:
            changed, applied = " ".join(new.split()), applied + 1
            if applied == most:
                break
    return changed if changed != text else None


def _paraphrase(rules: list[Rule], text: str, rng: random.Random) -> str | None:
    """Up to two rewrites, then (one time in two) the question mark dropped."""
    changed = _several(rules, text, rng, most=2) or text
    if rng.random() < 0.5:
        changed = re.sub(r"\s?\?$", "", changed)
    return changed if changed != text else None


def _swap_entity(q: Question, names: list[str], rng: random.Random) -> str | None:
    """The question's article title, or a country or city it names, swapped for another name: a
    whole word only (``파리`` is not swapped inside ``초파리``)."""
    for old in [q.title, *names]:
        m = re.search(rf"(?<![\w가-힣]){re.escape(old)}(?![A-Za-z])", q.text) if old else None
        if m is not None:
            new = rng.choice([n for n in names if n != old and n not in q.text])
            return q.text[: m.start()] + new + q.text[m.end() :]
    return None


def _change_number(text: str) -> str | None:
    m = re.search(r"\d+", text)
    if m is None:
        return None
    return text[: m.start()] + str(int(m.group(0)) + 1) + text[m.end() :]


def _different(questions: list[Question], rng: random.Random) -> Iterator[tuple[str, str]]:
    by_paragraph: dict[int, list[Question]] = {}
    for q in questions:
        by_paragraph.setdefault(q.paragraph, []).append(q)
    groups = [g for g in by_paragraph.values() if len(g) >= 2]
    rng.shuffle(groups)
    for group in groups:
        a, b = rng.sample(group, 2)
        if a.answer != b.answer and a.text != b.text:
            yield a.text, b.text


def build(lang: str, questions: list[Question], per_kind: int = PER_KIND) -> list[Pair]:
    rng = random.Random(f"{SEED}-{lang}")
    ko = lang == "ko"
    titles = sorted({q.title for q in questions if q.title in q.text})
    names = (KO_PLACES if ko else EN_PLACES) + titles
    pool = rng.sample(questions, len(questions))
    makers: dict[str, Callable[[Question], str | None]] = {
        "paraphrase": lambda q: _paraphrase(KO_PARAPHRASE if ko else EN_PARAPHRASE, q.text, rng),
        "entity": lambda q: _swap_entity(q, names, rng),
        "number": lambda q: _change_number(q.text),
        "negation": lambda q: _first(KO_NEGATION if ko else EN_NEGATION, q.text, rng),
    }
    pairs: list[Pair] = []
    for kind, make in makers.items():
        made = 0
        for q in pool:
            asked = make(q)
            if asked and asked != q.text:
                pairs.append(Pair(lang, kind, q.text, asked))
                made += 1
                if made == per_kind:
                    break
    for n, (a, b) in enumerate(_different(questions, rng)):
        if n == per_kind:
            break
        pairs.append(Pair(lang, "different", a, b))
    return pairs


JA: list[tuple[str, str, str]] = [
    ("paraphrase", "日本の首都はどこですか？", "日本の首都はどこ？"),
    ("paraphrase", "返金はできますか？", "返金は可能ですか？"),
    ("paraphrase", "東京タワーの高さは何メートルですか？", "東京タワーって何メートル？"),
    ("paraphrase", "富士山の標高を教えてください", "富士山の標高は？"),
    ("paraphrase", "パスワードをリセットする方法は？", "パスワードのリセット方法を教えて"),
    ("paraphrase", "この薬は子供に安全ですか？", "この薬は子どもにも安全ですか？"),
    ("entity", "日本の首都はどこですか？", "韓国の首都はどこですか？"),
    ("entity", "東京の人口は？", "大阪の人口は？"),
    ("entity", "トヨタの創業者は誰ですか？", "ホンダの創業者は誰ですか？"),
    ("number", "2023年の売上は？", "2024年の売上は？"),
    ("number", "りんご3個はいくらですか？", "りんご5個はいくらですか？"),
    ("negation", "返金はできますか？", "返金はできませんか？"),
    ("negation", "この薬は安全ですか？", "この薬は安全ではないですか？"),
    ("negation", "ログインできますか？", "ログインできないですか？"),
    ("different", "富士山の標高は？", "富士山に登るのに何時間かかりますか？"),
    ("different", "東京タワーの高さは？", "東京タワーはいつ完成しましたか？"),
]


def all_pairs(per_kind: int = PER_KIND) -> list[Pair]:
    """Korean, English and Japanese pairs, in that order."""
    pairs = build("ko", load(KORQUAD), per_kind) + build("en", load(XQUAD_EN), per_kind)
    return pairs + [Pair("ja", kind, a, b) for kind, a, b in JA]
