"""Retrieval, answer and citation metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from maru.eval import (
    check_citations,
    contains,
    exact_match,
    hit_at_1,
    mrr,
    ndcg_at_k,
    normalize,
    recall_at_k,
    token_f1,
)
from maru.eval.retrieval import retrieval_scores


def test_retrieval_metrics_match_their_definitions() -> None:
    ranked = ["d3", "d1", "d7", "d2"]
    relevant = {"d1": 2.0, "d2": 1.0, "d9": 1.0}
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert mrr(ranked, relevant) == 0.5
    assert hit_at_1(ranked, relevant) == 0.0 and hit_at_1(["d1"], relevant) == 1.0
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["d1", "d2", "d9"], relevant) == pytest.approx(1.0)
    assert set(retrieval_scores(ranked, relevant)) == {"recall@1", "recall@5", "recall@10", "ndcg@10", "mrr", "hit@1"}
    assert retrieval_scores([], relevant)["mrr"] == 0.0


def test_answers_are_normalised_as_squad_does() -> None:
    assert normalize("The  Eiffel-Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert token_f1("Paris, in France", ["Paris"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("nothing shared", ["Paris"]) == 0.0
    assert token_f1("Paris", ["London", "paris"]) == 1.0  # the best reference counts


def test_korean_answers_whitespace_tokens_and_the_lenient_contains() -> None:
    decomposed = "\u1109\u1165\u110b\u116e\u11af"  # 서울 as conjoining jamo
    assert exact_match(decomposed, ["서울"]) == 1.0  # NFKC composes it
    # A particle makes another whitespace token: F1 misses it, contains finds it.
    assert token_f1("서울에서 열렸다", ["서울"]) == 0.0
    assert contains("1989년 2월 15일 서울에서 열렸다", ["서울", "부산"]) == 1.0
    assert contains("부산", ["서울"]) == 0.0


def test_each_citation_is_checked_against_the_passage_it_names() -> None:
    passages = ["The palace was built in 1395 by the Joseon dynasty.", "Busan has the largest fish market."]
    score, checks = check_citations("The palace was built in 1395 [1]. Busan has a fish market [1].", passages)
    assert score == 0.5 and [c["supported"] for c in checks] == [True, False]
    # The extractive form puts the marker after the sentence's full stop.
    score, _ = check_citations("The palace was built in 1395. [1] Busan has the largest fish market. [2]", passages)
    assert score == 1.0
    score, checks = check_citations("Largest fish market [3]", passages)  # no passage 3
    assert score == 0.0 and checks[0]["n"] == 3
    assert check_citations("No markers here.", passages) == (None, [])
    score, _ = check_citations("The palace was built in 1395 [1][2]", passages)  # both markers cite the claim
    assert score == 0.5


def test_korean_citations_allow_a_particle_on_the_passage_word() -> None:
    passage = ["경복궁은 1395년에 세워졌으며 서울에서 가장 큰 궁궐이다."]
    assert check_citations("경복궁이 1395년에 세워졌다 [1]", passage)[0] == 1.0
    assert check_citations("부산 자갈치 시장 [1]", passage)[0] == 0.0
