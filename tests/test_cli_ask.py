"""What ``maru ask`` prints: the answer, then its sources as a reader wants them (which file, and
the start of the passage), without the retriever's internal fusion scores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maru import cli

pytest.importorskip("maru.rag.knowledge")
from maru.rag import knowledge  # noqa: E402

PASSAGE = "Gyeongbokgung was built in 1395 by the Joseon dynasty. It is the largest of the Five Grand Palaces."


class FakeKnowledgeBase:
    """Stands in for the index: answers with the scores a hybrid retriever's fusion gives."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def retriever(self, k: int) -> None:
        return None

    def ask(self, question: str, k: int, model: Any) -> Any:
        citations = [knowledge.Citation(1, "docs/palaces.md", PASSAGE, score=0.016393),
                     knowledge.Citation(2, "docs/food.md", "Jagalchi is in Busan.", score=0.0161)]
        return knowledge.Answer(question, "It was built in 1395 [1].", citations, "extractive")

    def close(self) -> None:
        pass


def test_ask_lists_sources_without_fusion_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kb" / "vectors").mkdir(parents=True)
    monkeypatch.setattr(knowledge, "KnowledgeBase", FakeKnowledgeBase)
    result = CliRunner().invoke(cli.app, ["ask", "When?", "--store", str(tmp_path / "kb"), "--extractive"])
    assert result.exit_code == 0, result.output
    assert not re.search(r"\(0\.\d+\)", result.stdout)
    assert "[1] docs/palaces.md" in result.stdout and "[2] docs/food.md" in result.stdout
    assert "Gyeongbokgung was built in 1395" in result.stdout  # which passage, not a number
