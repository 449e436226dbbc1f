"""`KnowledgeBase` (what `maru ingest` / `maru ask` run): ingest, skip, update, delete, answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maru import cli
from maru.errors import LoaderError
from maru.models.embeddings import Embeddings
from maru.models.scripted import ScriptedChatModel
from maru.rag.knowledge import KnowledgeBase

DOCS = {
    "palaces.md": "# Palaces\n\nGyeongbokgung is the largest of the five grand palaces in Seoul. "
    "It was first built in 1395 by the Joseon dynasty.\n\nThe royal guard changes at Gwanghwamun gate.",
    "food.txt": "Busan is famous for its seafood. Jagalchi Market is the largest fish market in Korea, "
    "and dwaeji gukbap is a pork soup the city is proud of.",
    "rivers.html": "<html><head><title>Rivers</title></head><body><nav>menu</nav><article><p>The Han River "
    "flows through Seoul. Its parks are popular for picnics and cycling in the summer.</p></article></body></html>",
    "korean.md": "제주도는 한국에서 가장 큰 섬입니다. 한라산은 제주도의 중앙에 있는 화산입니다. 성산일출봉에서 해돋이를 볼 수 있습니다.",
}


class CountingEmbeddings(Embeddings):
    def __init__(self, inner):
        self.inner = inner
        self.texts = 0

    def embed_documents(self, texts):
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_array(self, texts):
        self.texts += len(texts)
        return self.inner.embed_array(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture(scope="module")
def minilm():
    from maru.rag.embeddings import LocalEmbeddings

    return LocalEmbeddings()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_ingest_then_ask_cites_the_right_file(tmp_path, corpus, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm)
    report = kb.ingest([corpus])
    assert report.files_seen == 4 and report.result.added == report.chunks >= 4
    answer = kb.ask("When was Gyeongbokgung built?", k=2)
    assert answer.mode == "extractive"
    assert Path(answer.citations[0].source).name == "palaces.md"
    assert "1395" in answer.text and "[1]" in answer.text
    fish = kb.ask("Where is the biggest fish market?", k=2)
    assert Path(fish.citations[0].source).name == "food.txt" and "Jagalchi" in fish.text
    # Korean: the English-only embedding model is weak here; BM25 morphemes carry the hybrid.
    ko = kb.ask("한라산은 어디에 있나요?", k=2)
    assert Path(ko.citations[0].source).name == "korean.md" and "한라산" in ko.text
    kb.close()


def test_rerun_skips_unchanged_files_without_embedding(tmp_path, corpus, minilm):
    counting = CountingEmbeddings(minilm)
    kb = KnowledgeBase(tmp_path / "kb", embeddings=counting)
    kb.ingest([corpus])
    first = counting.texts
    again = kb.ingest([corpus])
    assert (again.files_unchanged, again.chunks, again.result) == (4, 0, None)
    assert counting.texts == first


def test_changed_and_removed_files_are_updated(tmp_path, corpus, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm)
    kb.ingest([corpus])
    before = kb.store.count()
    (corpus / "food.txt").write_text("Jeonju is famous for bibimbap, served in a hot stone bowl.", encoding="utf-8")
    (corpus / "rivers.html").unlink()
    report = kb.ingest([corpus])
    assert report.files_removed == 1 and [Path(s).name for s in report.sources] == ["food.txt"]
    texts = [d.text for d in kb.store.get(list(kb.store.ids()))]
    assert not any("Jagalchi" in t or "Han River" in t for t in texts)
    assert any("bibimbap" in t for t in texts)
    assert kb.store.count() < before
    assert Path(kb.ask("What is Jeonju famous for?", k=1).citations[0].source).name == "food.txt"


def test_with_a_model_the_answer_cites_numbered_passages(tmp_path, corpus, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm)
    kb.ingest([corpus])
    model = ScriptedChatModel(["Gyeongbokgung was built in 1395 [1]."])
    answer = kb.ask("When was Gyeongbokgung built?", k=2, model=model)
    assert answer.mode == "llm" and answer.text == "Gyeongbokgung was built in 1395 [1]."
    system = model.calls[0].messages[0].content
    assert "[1] (" in system and "palaces.md" in system and "1395" in system


def test_empty_and_missing(tmp_path, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm)
    with pytest.raises(LoaderError, match="maru ingest"):
        kb.ask("anything")
    with pytest.raises(LoaderError, match="does not exist"):
        kb.ingest([tmp_path / "nope"])


def test_cli_ingest_and_ask(tmp_path, corpus, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    runner = CliRunner()
    store = str(tmp_path / "kb")
    first = runner.invoke(cli.app, ["ingest", str(corpus), "--store", store])
    assert first.exit_code == 0, first.output
    assert "4 files: 4 indexed" in first.stdout
    second = runner.invoke(cli.app, ["ingest", str(corpus), "--store", store])
    assert "0 indexed, 4 unchanged" in second.stdout
    answer = runner.invoke(cli.app, ["ask", "When was Gyeongbokgung built?", "--store", store, "-k", "2"])
    assert answer.exit_code == 0, answer.output
    assert "extractive" in answer.stdout and "1395" in answer.stdout and "palaces.md" in answer.stdout
    missing = runner.invoke(cli.app, ["ask", "x", "--store", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "maru ingest" in missing.output


def test_docs_example_answers_from_the_project_docs(tmp_path):
    from maru.demo.ask_docs import run_demo

    root = Path(__file__).resolve().parents[2]
    result = run_demo(tmp_path / "kb", [root / "docs", root / "README.md"], ["What does make demo do?"])
    assert result["first"].chunks > 10 and result["second"].chunks == 0
    answer = result["answers"][0]
    assert answer.mode == "extractive" and re.search(r"\[[1-4]\]", answer.text)
    assert {Path(c.source).name for c in answer.citations} <= {p.name for p in Path("docs").glob("*.md")} | {"README.md"}
