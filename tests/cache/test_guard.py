"""The semantic cache's guard: negation, numbers and named entities, by language."""

import json
from pathlib import Path

import pytest

from maru.cache import guard, korean
from maru.cache.guard import compatible, entities, negations, numbers, unguarded

PAIRS = Path(__file__).parent / "data" / "guard_pairs.jsonl"

REFUSED = [
    # negation, English
    ("Is X safe?", "Is X not safe?", "negation"),
    ("Can I use it offline?", "Can't I use it offline?", "negation"),
    ("Why does my build fail?", "Why doesn’t my build fail?", "negation"),
    ("Is there a way to do it?", "Is there no way to do it?", "negation"),
    ("Should I ever restart it?", "Should I never restart it?", "negation"),
    ("How to cook rice with a rice cooker?", "How to cook rice without a rice cooker?", "negation"),
    # negation, Korean
    ("이 약은 안전한가요?", "이 약은 안전하지 않은가요?", "negation"),
    ("회원가입이 필요한가요?", "회원가입이 필요 없나요?", "negation"),
    ("오늘 갈 수 있나요?", "오늘 못 가나요?", "negation"),
    ("그는 학생인가요?", "그는 학생이 아닌가요?", "negation"),
    ("로그인이 돼요", "로그인이 안 돼요", "negation"),
    ("창문을 열어 두세요", "창문을 열어 두지 마세요", "negation"),
    ("그 사실을 알았나요?", "그 사실을 몰랐나요?", "negation"),
    # numbers
    ("What were the sales in 2023?", "What were the sales in 2024?", "numbers"),
    ("Convert 1.5 km to miles", "Convert 2.5 km to miles", "numbers"),
    ("Is a 3-year warranty included?", "Is a 5-year warranty included?", "numbers"),
    ("What is 10 minus 3?", "What is 3 minus 10?", "numbers"),
    ("Give me three tips", "Give me five tips", "numbers"),
    ("Who won the first match?", "Who won the second match?", "numbers"),
    ("2023년 매출은 얼마인가요?", "2024년 매출은 얼마인가요?", "numbers"),
    ("사과 두 개는 얼마예요?", "사과 세 개는 얼마예요?", "numbers"),
    ("3만 원으로 살 수 있나요?", "5만 원으로 살 수 있나요?", "numbers"),
    ("Top 10 movies", "Top movies", "numbers"),
    # named entities
    ("What is the capital of France?", "What is the capital of Spain?", "named entities"),
    ("How do I install it on Ubuntu?", "How do I install it on Fedora?", "named entities"),
    ("Is AWS cheaper here?", "Is GCP cheaper here?", "named entities"),
    ("Does the iPhone support it?", "Does the Pixel support it?", "named entities"),
    ("Flights from Seoul to Tokyo", "Flights from Tokyo to Seoul", "another order"),
    ('What does "idempotent" mean?', 'What does "immutable" mean?', "named entities"),
    ("python 설치 방법 알려줘", "java 설치 방법 알려줘", "named entities"),
    (
        "What was the first internet2 network named",
        "What was the first internet3 network named",
        "named entities",
    ),
    # Korean, by morpheme: what the regex guard let through
    ("한국의 수도는?", "일본의 수도는?", "named entities"),
    ("환불이 가능한가요?", "환불이 불가능한가요?", "negation"),
    ("비정상적인 종료인가요?", "정상적인 종료인가요?", "negation"),
    ("무료인가요?", "유료인가요?", "negation"),
    ("미성년자도 가입할 수 있나요?", "성년자도 가입할 수 있나요?", "negation"),
    ("가지 못했나요?", "갔나요?", "negation"),
    ("서울에서 부산까지 얼마나 걸려?", "부산에서 서울까지 얼마나 걸려?", "named entities"),
    ("이순신이 이긴 해전은?", "원균이 이긴 해전은?", "named entities"),
    ("제1차 세계대전은 언제 끝났나?", "제2차 세계대전은 언제 끝났나?", "numbers"),
    ("첫째 아들은 누구인가요?", "둘째 아들은 누구인가요?", "numbers"),
    # what is asked
    (
        "Why did Harvard end its early admission program?",
        "In what year did Harvard end its early admission program?",
        "asks for something else",
    ),  # cosine 0.985 with multilingual-e5-small
    ("이 사건은 언제 일어났나?", "이 사건은 어디서 일어났나?", "asks for something else"),
    ("티베트 고원의 면적은?", "티베트 고원의 고도는?", "asks for something else"),
    ("사건이 일어난 날짜는?", "사건이 일어난 곳은?", "asks for something else"),
    # no guard reads these scripts: never compatible, even with themselves
    ("日本の首都はどこですか？", "日本の首都はどこ？", "no guard reads"),
    ("中国的首都是哪里？", "中国的首都是哪里", "no guard reads"),
    ("What is the capital of Japan?", "日本の首都は？", "no guard reads"),
    ("Paris is it nice in May?", "London is it nice in May?", "named entities"),
]

ACCEPTED = [
    ("What is the capital of France?", "Tell me France's capital.", set()),
    ("Is it safe to eat raw eggs?", "Is eating raw eggs safe?", set()),
    ("What were the sales in 2023?", "How much did we sell in 2023?", set()),
    ("Convert 1,000 won to dollars", "Convert 1000 won to dollars", set()),
    ("3만 원이면 충분한가요?", "30,000원이면 충분한가요?", set()),
    ("Isn't X safe?", "Is X not safe?", set()),  # one negation each
    ("How do I reset my password?", "how can I reset my password", set()),
    ("서울 날씨 어때?", "서울 날씨는 어때요?", set()),
    ("어디 있는지 말해 줘", "어디에 있는지 말해줘", set()),  # 말해 is "tell", not 말라 "don't"
    ("What's new in Python 3.12?", "What is new in Python 3.12?", set()),
    ("Please explain GPT-4o pricing", "Explain the pricing of GPT-4o", set()),
    (
        "안녕하세요, 안내 데스크는 어디인가요?",
        "안내 데스크가 어디죠?",
        set(),
    ),  # 안녕/안내 are not 안
    ("서울에서 부산까지 얼마나 걸려?", "부산까지 서울에서 얼마나 걸려?", set()),  # free word order
    ("한국의 수도는?", "한국의 수도는 어디야?", set()),
    ("환불이 불가능한가요?", "환불이 안 되나요?", set()),  # one negation each
    ("A 아니면 B인가요?", "A 아니면 B예요?", set()),  # 아니면 is "or", not a negation
    ("中 정부의 발표는?", "中 정부 발표는 뭐야?", set()),  # hanja inside Korean: Kiwi reads them
    ("In what year did the war end?", "When did the war end?", set()),
    (
        "What were the sales in 2023?",
        "How much did we sell in 2023?",
        set(),
    ),  # "what" asks anything
    ("티베트 고원의 면적은?", "티베트 고원의 면적은 얼마야?", set()),
    ("이 상의 수상자는?", "이 상의 수상자는 누구인가요?", set()),
]


@pytest.mark.parametrize(("a", "b", "why"), REFUSED)
def test_refused(a, b, why):
    ok, reason = compatible(a, b)
    assert not ok
    assert why in reason
    assert compatible(b, a)[0] is False  # symmetric


@pytest.mark.parametrize(("a", "b", "_"), ACCEPTED)
def test_accepted(a, b, _):
    assert compatible(a, b) == (True, "")
    assert compatible(b, a) == (True, "")


def test_features():
    assert negations("I can't say it isn't true, not at all") == ["can't", "isn't", "not"]
    assert negations("안 먹었고 먹지 않았고 먹을 수 없었다") == ["안", "않", "없"]
    assert negations("안전하고 안녕한 안내") == []
    assert numbers("From 1,000 to 2.5 million, or 3만 and 5k; the first two") == [
        "1000", "2500000", "30000", "5000", "1", "2",
    ]  # fmt: skip
    assert numbers("v2 and GPT-4o") == ["4"]
    assert entities("What does NASA's 'Artemis' plan mean for the Moon?") == [
        "artemis", "nasa", "moon",
    ]  # fmt: skip
    assert entities("How are you? I am fine. Where is Busan?") == ["busan"]
    assert entities("aws와 gcp 요금 비교") == ["aws", "gcp"]


def test_the_reason_shows_what_differed():
    assert compatible("sales in 2023", "sales in 2024") == (
        False,
        "numbers differ: [2023] vs [2024]",
    )
    assert compatible("Is X safe?", "Is X not safe?") == (False, "negation differs: none vs [not]")
    assert compatible("capital of France", "capital of Spain") == (
        False,
        "named entities differ: [france] vs [spain]",
    )


def test_korean_features_by_morpheme():
    assert negations("불가능하고 비공개이며 미확인인 것은 아니면 없나?") == ["불", "비", "미", "없"]
    assert negations("먹지 않았고 가지 못했고 하지 마세요, 몰랐다") == ["않", "못", "말", "모르"]
    assert entities("서울에서 부산까지 KTX") == ["ktx", "부산까지", "서울에서"]
    assert numbers("제1차 회의, 징역1년 6개월, 노트5") == ["1", "1", "6", "5"]


def test_scripts_no_guard_reads():
    for text in (
        "What is it?",
        "한국의 수도는?",
        "python 설치 방법",
        "中 정부 발표는?",
        "2024?",
        "",
    ):
        assert unguarded(text) is None
    assert "Japanese" in unguarded("東京の人口は？")
    assert "Chinese" in unguarded("北京的人口是多少？")
    assert "Thai" in unguarded("เมืองหลวงของไทยคืออะไร")
    assert "Cyrillic" in unguarded("Какая столица России?")


def test_korean_without_kiwipiepy_is_unguarded(monkeypatch):
    monkeypatch.setattr(korean, "available", lambda: False)
    assert "kiwipiepy" in unguarded("한국의 수도는?")
    assert guard.compatible("한국의 수도는?", "한국의 수도는?")[0] is False
    assert unguarded("What is it?") is None


def test_generated_pairs_from_korquad_and_xquad():
    """240 pairs built by bench/cache_pairs.py from real KorQuAD and XQuAD questions: near misses
    (an entity swapped, a number changed, a negation added) must be refused, light rewrites
    accepted. The regex guard before Kiwi accepted 25 of the 70 Korean near misses."""
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    for lang in ("ko", "en"):
        mine = [p for p in pairs if p["lang"] == lang]
        accepted = [compatible(p["stored"], p["asked"])[0] for p in mine]
        paraphrases = [
            ok for p, ok in zip(mine, accepted, strict=True) if p["kind"] == "paraphrase"
        ]
        near_misses = [
            ok for p, ok in zip(mine, accepted, strict=True) if p["kind"] != "paraphrase"
        ]
        assert sum(paraphrases) >= 0.96 * len(paraphrases), lang
        assert sum(near_misses) <= 0.04 * len(near_misses), lang
