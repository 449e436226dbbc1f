"""Experiments in the trace viewer: the API, and the page in a real browser (Debian's chromium) with
two configs on a Cranfield slice side by side, question by question."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import chromium
from maru.eval import evaluate, load_dataset
from maru.tracing.store import RunStore
from maru.tracing.viewer import create_viewer_app

from ._data import build_kb, cranfield_beir


@pytest.fixture(scope="module")
def two_configs(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    """The same Cranfield questions through the knowledge base (hybrid) and through its dense
    retriever alone (hash embeddings: close to chance), in one store."""
    folder = tmp_path_factory.mktemp("cran")
    data = load_dataset(cranfield_beir(folder / "beir"))
    data.write_corpus(folder / "files")
    kb = build_kb(folder / "kb", folder / "files")
    store = RunStore(folder / "traces.sqlite")
    try:
        kb.evaluate(data, store=store, name="hybrid")
        evaluate(data, kb.store.as_retriever(k=10), store=store, name="dense")
    finally:
        kb.close()
    return store


def test_the_api_lists_and_compares_experiments(two_configs: RunStore) -> None:
    client = TestClient(create_viewer_app(two_configs))
    listed = client.get("/api/experiments").json()["experiments"]
    assert {e["name"] for e in listed} == {"hybrid", "dense"} and all(e["done"] == 8 for e in listed)
    compared = client.get("/api/experiments/compare", params=[("name", "hybrid"), ("name", "dense")]).json()
    assert [e["name"] for e in compared["experiments"]] == ["hybrid", "dense"]
    assert len(compared["questions"]) == 8
    first = compared["questions"][0]["results"]
    assert first[0]["trace_id"] != first[1]["trace_id"] and "ndcg@10" in first[0]["scores"]
    missing = client.get("/api/experiments/compare", params={"name": "nope"})
    assert missing.status_code == 404 and "no experiment 'nope'" in missing.json()["detail"]
    assert client.get("/api/experiments/compare", params=[("name", "a")] * 5).status_code == 422
    page = client.get("/experiments")
    assert page.status_code == 200 and "experiments.js" in page.text
    assert client.get("/static/experiments.js").status_code == 200


@pytest.mark.integration
def test_two_configs_side_by_side_in_the_browser(two_configs: RunStore, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from tracing.viewer_server import serve_viewer

    summary = {e.name: e.summary for e in two_configs.experiments.all()}
    with serve_viewer(two_configs) as url, chromium("the experiments page's browser test") as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.set_default_timeout(10_000)
        page.goto(f"{url}/experiments#compare=hybrid,dense")

        expect(page.locator("#experiments tbody tr")).to_have_count(2)
        rows = page.locator("#summary tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator("td").nth(0)).to_have_text("hybrid")
        header = page.locator("#summary thead th").all_inner_texts()
        ndcg = header.index("ndcg@10")
        expect(rows.nth(0).locator("td").nth(ndcg)).to_have_text(f"{summary['hybrid']['ndcg@10']:.3f}")
        expect(rows.nth(1).locator("td").nth(ndcg)).to_have_text(f"{summary['dense']['ndcg@10']:.3f}")

        # Per question: the chosen metric for each config and the difference; only questions that differ.
        expect(page.locator("#metric")).to_have_value("ndcg@10")
        questions = page.locator("#questions tbody tr")
        expect(questions.first).to_be_visible()
        shown = questions.count()
        assert 1 <= shown <= 8
        page.uncheck("#only-differences")
        expect(questions).to_have_count(8)

        # One question: each config's ranking, the relevant ids marked, and a link to its trace.
        questions.first.click()
        sides = page.locator("#question-sides .side")
        expect(sides).to_have_count(2)
        expect(sides.nth(0).locator("h4").first).to_have_text("hybrid")
        expect(sides.nth(0).locator("code.relevant").first).to_be_visible()
        link = sides.nth(0).locator("a.trace-link")
        expect(link).to_have_attribute("href", f"/#trace={two_configs.experiments.results('hybrid')[0].trace_id}")
        page.screenshot(path=os.environ.get("MARU_SCREENSHOT", str(tmp_path / "experiments.png")), full_page=True)

        link.click()  # into the trace viewer: the question's run tree
        expect(page.locator("#trace-title")).to_have_text("eval hybrid")
        assert not problems, problems
