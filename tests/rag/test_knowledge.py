"""`KnowledgeBase` (what `maru ingest` / `maru ask` run): ingest, skip, update, delete, answer."""

from __future__ import annotations

import asyncio
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
    answer = runner.invoke(cli.app, ["ask", "When was Gyeongbokgung built?", "--store", store, "-k", "2", "--extractive"])
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


# ---------------------------------------------------------------------------- the knowledge base as a runnable
QUESTION = "When was Gyeongbokgung built?"
REPLY = "Gyeongbokgung was built in 1395 [1]."


@pytest.fixture
def kb(tmp_path, corpus, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm, model=ScriptedChatModel([REPLY], cycle=True), k=2)
    kb.ingest([corpus])
    yield kb
    kb.close()


def test_invoke_stream_batch_and_async_answer_like_ask(kb):
    assert kb.ask(QUESTION, k=2).text == REPLY
    assert kb.invoke(QUESTION) == kb.invoke({"question": QUESTION}) == REPLY
    chunks = list(kb.stream(QUESTION))
    assert len(chunks) > 1 and "".join(chunks) == REPLY  # the model's tokens stream through
    assert kb.batch([QUESTION, {"question": "Where is the fish market?"}]) == [REPLY, REPLY]

    async def run_async():
        return await kb.ainvoke(QUESTION), [c async for c in kb.astream(QUESTION)], await kb.abatch([QUESTION])

    answer, streamed, batched = asyncio.run(run_async())
    assert answer == REPLY and len(streamed) > 1 and "".join(streamed) == REPLY and batched == [REPLY]
    model = kb.model
    system = model.calls[-1].messages[0].content
    assert "[1] (" in system and "palaces.md" in system  # k=2 passages, numbered, with their sources


def test_without_a_model_the_runnable_answers_extractively(tmp_path, corpus, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm, k=2)
    kb.ingest([corpus])
    answer = kb.ask(QUESTION, k=2)
    assert answer.mode == "extractive" and "1395" in answer.text
    assert kb.invoke(QUESTION) == "".join(kb.stream(QUESTION)) == answer.text
    assert kb.invoke(QUESTION, sentences=1).count("[") == 1  # settings can be given per call


def test_usable_inside_a_larger_chain(kb):
    from maru import passthrough, runnable
    from maru.parsers import StrOutputParser

    chain = {"question": passthrough()} | kb | runnable(str.upper)
    assert chain.invoke(QUESTION) == REPLY.upper()
    piped = kb | StrOutputParser()
    assert piped.invoke(QUESTION) == REPLY
    assert len(list(piped.stream(QUESTION))) > 1


class MemorySink:
    def __init__(self):
        self.traces = []

    def write(self, runs):
        self.traces.append(runs)

    def flush(self):
        pass

    def close(self):
        pass


def _descends_from(run, root, by_id):
    while run.parent_id is not None:
        run = by_id[run.parent_id]
    return run is root


@pytest.mark.parametrize("how", ["invoke", "stream", "ask", "observed"])
def test_a_question_traces_as_one_tree(kb, how):
    from maru.core.events import listen
    from maru.tracing import tracing

    events = []
    sink = MemorySink()
    with tracing([sink]):
        if how == "invoke":
            kb.invoke(QUESTION)
        elif how == "stream":
            list(kb.stream(QUESTION))
        elif how == "ask":
            kb.ask(QUESTION, k=2)
        else:  # a listener sends every run down the general (observed) path
            with listen(events.append):
                kb.invoke(QUESTION)
    [runs] = sink.traces
    root = runs[-1]
    assert root.parent_id is None and root.name == "KnowledgeBase"
    assert (root.outputs["answer"] if how == "ask" else root.outputs) == REPLY
    by_id = {r.id: r for r in runs}
    assert all(r.trace_id == root.id and _descends_from(r, root, by_id) for r in runs)
    assert {"retriever", "prompt", "llm", "parser"} <= {r.kind for r in runs}
    assert {r.name for r in runs if r.parent_id == root.id} == {"question", "Parallel", "Assign"}
    if how == "observed":
        starts = [e for e in events if e.phase == "start"]
        assert starts[0].name == "KnowledgeBase" and starts[0].parent_id is None
        assert {e.trace_id for e in events} == {starts[0].run_id}
        assert {"retriever", "prompt", "chat_model"} <= {e.kind for e in starts}


def test_the_retriever_and_the_bm25_index_are_loaded_once(kb, monkeypatch):
    from maru.rag.lexical import BM25Index

    loads = []
    load = BM25Index.load
    monkeypatch.setattr(BM25Index, "load", classmethod(lambda cls, d: loads.append(d) or load(d)))
    for q in (QUESTION, "Where is the biggest fish market?", "What flows through Seoul?"):
        kb.invoke(q)
        kb.ask(q, k=2)
    assert len(loads) == 1
    assert kb.retriever(2) is kb.retriever(2)
    assert kb._answering() is kb._answering()


def test_answers_follow_a_reindex(kb, corpus, minilm, monkeypatch):
    from maru.rag.lexical import BM25Index

    question = "What is Jeonju famous for?"
    assert all(Path(c.source).name != "jeonju.md" for c in kb.ask(question, k=2).citations)
    (corpus / "jeonju.md").write_text("Jeonju is famous for bibimbap, served in a hot stone bowl.", encoding="utf-8")
    kb.ingest([corpus])  # this object re-indexes: what it kept is dropped
    assert Path(kb.ask(question, k=1).citations[0].source).name == "jeonju.md"

    loads = []
    load = BM25Index.load
    monkeypatch.setattr(BM25Index, "load", classmethod(lambda cls, d: loads.append(d) or load(d)))
    (corpus / "jeonju.md").unlink()
    (corpus / "gimchi.md").write_text("Gimchi is fermented napa cabbage with chili.", encoding="utf-8")
    other = KnowledgeBase(kb.path, embeddings=minilm)  # another writer of the same folder
    other.ingest([corpus])
    other.close()
    cited = kb.ask("What is gimchi made of?", k=1).citations
    assert Path(cited[0].source).name == "gimchi.md" and len(loads) == 1  # the new BM25 index, read once
    assert all(Path(c.source).name != "jeonju.md" for c in kb.ask(question, k=4).citations)


def test_runnable_refuses_what_ask_refuses(tmp_path, minilm):
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm)
    with pytest.raises(LoaderError, match="maru ingest"):
        kb.invoke("anything")
    with pytest.raises(ValueError, match="empty"):
        kb.invoke({"question": "  "})
    with pytest.raises(TypeError, match="question string"):
        kb.invoke(42)


def test_an_unrelated_question_is_not_found_and_no_model_is_asked(tmp_path, corpus, minilm):
    """Seen by a user: "What is the capital of France?" over a project's docs was answered with
    quotes about unrelated things."""
    model = ScriptedChatModel(["Paris [1]."])
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm, model=model)
    kb.ingest([corpus])
    answer = kb.ask("What is the exchange rate of the Swiss franc today?")
    assert answer.mode == "not_found" and answer.text == "Not found in these documents."
    assert model.calls == [] and answer.citations  # the closest passages are still shown
    assert KnowledgeBase(tmp_path / "kb", embeddings=minilm).ask("Who won the 1998 World Cup?").mode == "not_found"
    assert kb.ask("When was Gyeongbokgung built?").mode == "llm"  # a real question still is answered


def test_an_answer_without_a_citation_gets_the_passage_it_used(tmp_path, corpus, minilm):
    model = ScriptedChatModel(["Jagalchi Market is the largest fish market in Korea."], cycle=True)
    kb = KnowledgeBase(tmp_path / "kb", embeddings=minilm, model=model, k=3)
    kb.ingest([corpus])
    answer = kb.ask("Where is the largest fish market?")
    cited = int(re.search(r"\[(\d)\]$", answer.text).group(1))
    assert Path(answer.citations[cited - 1].source).name == "food.txt"
    assert "".join(kb.stream("Where is the largest fish market?")) == answer.text


@pytest.mark.real_model
def test_cli_ask_answers_with_the_local_model_or_says_not_found(tmp_path, corpus, monkeypatch):
    """With no key and no server, `maru ask` answers with a real model, cites, or says not found."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    runner = CliRunner()
    store = str(tmp_path / "kb")
    assert runner.invoke(cli.app, ["ingest", str(corpus), "--store", store]).exit_code == 0
    answer = runner.invoke(cli.app, ["ask", "When was Gyeongbokgung built?", "--store", store, "-k", "2"])
    assert answer.exit_code == 0, answer.output
    assert "model: SmolLM2-135M-Instruct" in answer.stderr
    assert re.search(r"answer:.*\[\d\]", answer.stdout) and "palaces.md" in answer.stdout
    assert "extractive" not in answer.stdout
    off_topic = runner.invoke(cli.app, ["ask", "What is the capital of France?", "--store", store])
    assert off_topic.exit_code == 0 and "Not found in these documents." in off_topic.stdout
