"""A graph agent's traces in the viewer, in headless Chromium: the thread's checkpoints, the
conversation as role bubbles with the tool call as name + arguments, the paused node, the timeline.

Set ``MARU_VIEWER_SHOTS=<folder>`` to keep the screenshots (``docs/img`` holds the ones the docs show).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import chromium
from maru.tracing.store import RunStore

from .graph_traces import THREAD, agent_traces
from .viewer_server import serve_viewer

pytestmark = pytest.mark.integration


def test_a_graph_trace_shows_checkpoints_a_conversation_and_a_timeline(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    store = RunStore(tmp_path / "traces.sqlite")
    paused, resumed = agent_traces(store)
    shots = Path(os.environ.get("MARU_VIEWER_SHOTS") or tmp_path)
    with serve_viewer(store) as url, chromium("the graph viewer's browser test") as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.set_default_timeout(10_000)

        # The run that paused: its checkpoints, and the approval node marked as paused, not failed.
        page.goto(f"{url}/#trace={paused[0].trace_id}")
        listed = page.locator(f'#traces tr[data-trace-id="{paused[0].trace_id}"] td.status')
        expect(listed).to_have_text("ok ⏸ paused")  # waiting on a person is not a failure
        expect(page.locator("#graph-title .thread-id")).to_have_text(THREAD)
        rows = page.locator("#checkpoints tbody tr")
        expect(rows).to_have_count(3)
        assert [r.split("\t")[:4] for r in rows.all_inner_texts()] == [
            ["0", "input", "input", "agent"], ["1", "loop", "agent", "approve"], ["2", "pending", "—", "approve"],
        ]
        approve = page.locator('#tree .run-row:has(.run-name:text-is("approve"))')
        expect(approve).to_have_class("run-row paused")
        expect(approve.locator(".mark")).to_have_text("⏸ paused")
        expect(page.locator("#tree .run-row.failed")).to_have_count(0)
        page.locator('#tree .run-row:has(.run-name:text-is("interrupt"))').click()
        expect(page.locator("#run-inputs")).to_contain_text('"tool": "get_weather"')

        # The resumed run: the model's input as a conversation, the tool call as name + arguments.
        page.goto(f"{url}/#trace={resumed[0].trace_id}")
        expect(page.locator("#checkpoints tbody tr")).to_have_count(4)
        page.locator('#tree .run-row:has(.run-name:text-is("ScriptedChatModel"))').click()
        bubbles = page.locator("#run-inputs-chat .msg")
        expect(bubbles).to_have_count(4)
        assert bubbles.evaluate_all("els => els.map(e => e.className)") == [
            "msg msg-system", "msg msg-user", "msg msg-assistant", "msg msg-tool",
        ]
        expect(bubbles.nth(1)).to_contain_text("Is today good for a walk in Seoul?")
        expect(bubbles.nth(2).locator(".tool-name")).to_have_text("get_weather")
        expect(bubbles.nth(2).locator(".tool-args")).to_have_text('{"city":"Seoul"}')
        expect(bubbles.nth(3)).to_contain_text("Seoul: sunny, 21°C")
        expect(page.locator("#run-inputs-raw")).not_to_have_attribute("open", "")  # the JSON, one click away
        expect(page.locator("#run-outputs-chat .msg-assistant")).to_contain_text("a good day for the palace")
        page.set_viewport_size({"width": 1280, "height": 1700})  # the whole run detail in the pane
        page.locator("#run-detail").screenshot(path=str(shots / "trace-graph-conversation.png"))
        page.set_viewport_size({"width": 1280, "height": 860})

        # The timeline: one bar per run, placed by start and end inside the trace's span.
        page.click("#show-timeline")
        expect(page.locator("#tree")).to_be_hidden()
        bars = page.locator("#timeline .tl-row")
        expect(bars).to_have_count(len(resumed))
        boxes = page.locator("#timeline .tl-bar").evaluate_all(
            "els => els.map(e => { const b = e.getBoundingClientRect(), l = e.parentElement.getBoundingClientRect();"
            " return [b.left - l.left, b.right - l.left, l.width]; })"
        )
        root, *children = boxes
        assert root[0] <= 1 and root[1] >= root[2] - 1  # the graph's run spans the whole lane
        assert all(left >= 0 and right <= width + 1 for left, right, width in children)
        starts = [left for left, _, _ in children]
        assert starts[0] <= starts[-1] and len(set(round(s) for s in starts)) > 2  # spread out in time
        page.locator('#timeline .tl-row:has(.tl-name:text-is("get_weather"))').click()
        expect(page.locator("#run-title")).to_have_text("get_weather (tool)")
        page.evaluate("document.getElementById('detail-pane').scrollTop = 0")
        page.locator("#detail-pane").screenshot(path=str(shots / "trace-graph-timeline.png"))
        assert problems == []
