"""The default judge — the bundled local model — on an English question and its passage: every reply
parses (the schema is a grammar the decoder is held to) and is stored with its reasoning. Whether a
135M model judges *well* is not asserted: it does not (see docs/evaluation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maru.eval import Dataset, Judge, evaluate

pytestmark = [pytest.mark.integration, pytest.mark.real_model]

PASSAGE = "Gyeongbokgung was built in 1395. It is the largest of the Five Grand Palaces of Seoul."


def test_the_local_model_judges_in_a_schema_that_always_parses(local_model: Any, tmp_path: Path) -> None:
    data = Dataset.from_examples([{"id": "palace", "question": "When was Gyeongbokgung built?", "answers": "1395"}])
    result = evaluate(data, lambda q: {"answer": "It was built in 1395 [1].", "documents": [PASSAGE]},
                      judge=Judge(local_model(max_tokens=120)), store=tmp_path / "t.sqlite", progress=False)
    judged = result.results[0].judgements
    assert set(judged) == {"relevance", "faithfulness"}
    for judgement in judged.values():
        assert judgement["score"] in (0.0, 0.25, 0.5, 0.75, 1.0), judgement
        assert judgement["reasoning"] and judgement["model"].startswith("SmolLM2")
    assert result.config["judge"].startswith("SmolLM2") and result["exact_match"] == 0.0 and result["contains"] == 1.0
