"""The trace viewer in a real browser: Debian's chromium driven by Playwright.

``scripts/services.sh`` (run by ``make test``) installs chromium; Playwright's Python package brings
its own driver, and no browser is ever downloaded. Without /usr/bin/chromium this test fails — it
does not skip — so CI cannot pass without having looked at the page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import chromium
from maru.tracing.store import RunStore

from .traces import make_trace
from .viewer_server import serve_viewer

pytestmark = pytest.mark.integration

@pytest.fixture
def viewer_url(tmp_path: Path) -> Iterator[str]:
    # Times relative to now, taken here: taken at import, a session longer than ~5 minutes pushed
    # the 10-minutes-old trace out of the "last 15 minutes" filter before this test ran.
    now = time.time()
    store = RunStore(tmp_path / "traces.sqlite")
    store.write(make_trace("tr-qa", "qa-chain", start=now - 3600, tags=("prod",)))
    store.write(make_trace("tr-sum", "summarise", start=now - 600, child_error="ValueError: bad json at line 3"))
    store.write(make_trace("tr-fail", "qa-chain v2", start=now - 60, error="TimeoutError: model took too long"))
    store.write(make_trace("tr-html", "<img src=x onerror=alert(1)>", start=now - 30))
    with serve_viewer(store) as url:
        yield url


def test_browse_filter_and_drill_into_a_failing_run(viewer_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with chromium("the viewer's browser test") as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []
        requested: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: requested.append(r.url))
        page.set_default_timeout(10_000)

        page.goto(viewer_url)

        # The list: every trace, newest first, with latency, tokens, cost and status.
        rows = page.locator("#traces tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.nth(0).locator("td.name")).to_have_text("<img src=x onerror=alert(1)>")  # text, not HTML
        expect(rows.nth(1)).to_contain_text("qa-chain v2")
        expect(rows.nth(1).locator("td.status")).to_have_text("error")
        expect(rows.nth(2)).to_contain_text("summarise")
        expect(rows.nth(2).locator("td.status")).to_contain_text("1 failed run")
        qa = rows.nth(3)
        expect(qa.locator("td.name")).to_have_text("qa-chain")
        expect(qa.locator("td.latency")).to_have_text("810 ms")
        expect(qa.locator("td.tokens")).to_have_text("150")
        expect(qa.locator("td.cost")).to_have_text("$0.000036")
        expect(qa.locator("td.status")).to_have_text("ok")
        expect(page.locator("#page-info")).to_have_text("1–4 of 4")

        # Filter by name (typing filters as you go).
        page.fill("#f-name", "summ")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("summarise")

        # Into the trace: the run tree, indented, with kind, latency, tokens and cost.
        rows.first.click()
        expect(page.locator("#detail-pane")).to_be_visible()
        expect(page.locator("#trace-title")).to_have_text("summarise")
        tree = page.locator("#tree .run-row")
        expect(tree).to_have_count(5)
        names = tree.locator(".run-name").all_inner_texts()
        assert names == ["summarise", "ChatPromptTemplate", "OpenAIChat", "format", "parse"]
        llm = page.locator('#tree .run-row:has(.run-name:text-is("OpenAIChat"))')
        expect(llm.locator(".kind")).to_have_text("llm")
        expect(llm.locator(".latency")).to_have_text("800 ms")
        expect(llm.locator(".tokens")).to_have_text("150 tok")
        expect(llm.locator(".cost")).to_have_text("$0.000036")

        def indent(name: str) -> float:
            row = page.locator(f'#tree .run-row:has(.run-name:text-is("{name}"))')
            return float(row.evaluate("e => parseFloat(getComputedStyle(e).paddingLeft)"))

        assert indent("summarise") < indent("OpenAIChat") == indent("format") < indent("parse")

        # A successful run: its inputs and outputs as pretty JSON.
        llm.click()
        expect(page.locator("#run-title")).to_have_text("OpenAIChat (llm)")
        expect(page.locator("#run-inputs")).to_contain_text('"content": "서울 날씨는?"')
        expect(page.locator("#run-outputs")).to_contain_text('"content": "맑음, 21°C"')
        expect(page.locator("#run-facts")).to_contain_text("gpt-4o-mini")
        expect(page.locator("#run-error")).to_be_hidden()

        # The failing run: shown in red in the tree, its error in the detail.
        failing = page.locator("#tree .run-row.failed")
        expect(failing).to_have_count(1)
        expect(failing.locator(".run-name")).to_have_text("parse")
        failing.click()
        expect(page.locator("#run-error")).to_be_visible()
        expect(page.locator("#run-error")).to_have_text("ValueError: bad json at line 3")
        expect(page.locator("#run-inputs")).to_have_text("맑음, 21°C")
        color = page.locator("#run-error").evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(179, 38, 30)"
        assert "run=tr-sum-5" in page.url  # a link to this run

        # Errors only, from a clean filter: the failed trace and the recovered one.
        page.click("#clear-filters")
        expect(rows).to_have_count(4)
        page.check("#f-errors")
        expect(rows).to_have_count(2)
        # Tag and time range.
        page.uncheck("#f-errors")
        page.fill("#f-tag", "prod")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td.name")).to_have_text("qa-chain")
        page.fill("#f-tag", "")
        page.select_option("#f-range", "15m")
        expect(rows).to_have_count(3)

        # A deep link opens the trace and the run.
        page.goto(f"{viewer_url}/#trace=tr-fail&run=tr-fail-3")
        expect(page.locator("#run-title")).to_have_text("OpenAIChat (llm)")
        expect(page.locator("#run-error")).to_have_text("TimeoutError: model took too long")

        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot), full_page=True)
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

        assert problems == []
        assert all(url.startswith(viewer_url) for url in requested), requested
