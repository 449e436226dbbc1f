"""Web tools: search on recorded responses; fetch and crawl against a loopback site that must be
allow-listed explicitly."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from maru.agents import ToolCallingAgent
from maru.agents.web import crawl, fetch_page, make_web_tools, search_web
from maru.errors import BlockedAddressError
from maru.messages import AIMessage, ToolCall
from maru.models.scripted import ScriptedChatModel
from maru.net import NetworkPolicy

RECORDED = json.loads((Path(__file__).parent / "data" / "ddgs_seoul.json").read_text())


class RecordedSearch:
    """Plays back a response recorded from ddgs.DDGS().text, and records the request."""

    def __init__(self):
        self.requests = []

    def text(self, query, **kwargs):
        self.requests.append((query, kwargs))
        return RECORDED[: kwargs.get("max_results", 5)]


PAGES = {
    "/": "<html><head><title>Home</title></head><body><nav>menu</nav><article><h1>Welcome</h1>"
    "<p>Seoul has five grand palaces built by the Joseon dynasty. Gyeongbokgung is the largest of them "
    "and was first built in 1395.</p></article>"
    "<a href='/a'>A</a> <a href='/b#frag'>B</a> <a href='/private/x'>P</a> <a href='https://example.org/out'>out</a>"
    "<a href='mailto:x@y'>mail</a></body></html>",
    "/a": "<html><head><title>A</title></head><body><p>Page A talks about Bukchon Hanok Village in detail, "
    "with its traditional houses.</p><a href='/c'>C</a></body></html>",
    "/b": "<html><head><title>B</title></head><body><p>Page B.</p></body></html>",
    "/c": "<html><head><title>C</title></head><body><p>Page C is deep.</p></body></html>",
    "/private/x": "<html><body>secret</body></html>",
}


class Site(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/robots.txt":
            body, ctype = b"User-agent: *\nDisallow: /private/\n", "text/plain"
        elif self.path in PAGES:
            body, ctype = PAGES[self.path].encode(), "text/html; charset=utf-8"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


ALLOW = NetworkPolicy(allow=("127.0.0.1",))


def test_search_returns_title_url_snippet_from_recorded_response():
    client = RecordedSearch()
    results = search_web("famous places in Seoul", 5, client=client)
    assert [r.url for r in results] == [
        "https://english.visitseoul.net/attractions/Gyeongbokgung",
        "https://www.example.org/seoul-top-10",
    ]
    assert results[0].title == "Gyeongbokgung Palace - Visit Seoul"
    assert "Joseon" in results[0].snippet
    assert client.requests == [("famous places in Seoul", {"region": "wt-wt", "max_results": 5})]


def test_fetch_is_blocked_unless_loopback_is_allowed(site):
    with pytest.raises(BlockedAddressError, match="allow it"):
        fetch_page(site + "/")
    page = fetch_page(site + "/", ALLOW)
    assert page.title == "Welcome"  # trafilatura prefers the main heading
    assert "Gyeongbokgung is the largest" in page.text and "menu" not in page.text
    assert page.links == [site + "/a", site + "/b", site + "/private/x", "https://example.org/out"]


def test_crawler_stays_on_site_honours_robots_and_limits(site):
    urls = [p.url for p in crawl(site + "/", max_depth=2, max_pages=10, policy=ALLOW)]
    assert urls == [site + "/", site + "/a", site + "/b", site + "/c"]
    assert [p.url for p in crawl(site + "/", max_depth=1, max_pages=10, policy=ALLOW)] == [
        site + "/", site + "/a", site + "/b",
    ]
    assert len(list(crawl(site + "/", max_pages=2, policy=ALLOW))) == 2
    with_private = [p.url for p in crawl(site + "/", max_depth=1, policy=ALLOW, respect_robots=False)]
    assert site + "/private/x" in with_private
    with pytest.raises(BlockedAddressError):
        list(crawl(site + "/"))


def test_agent_uses_web_tools_and_the_guard_reaches_the_model(site):
    search, fetch = make_web_tools(ALLOW, search_client=RecordedSearch())
    assert [search.name, fetch.name] == ["web_search", "web_fetch"]
    model = ScriptedChatModel([
        AIMessage("", tool_calls=[
            ToolCall(name="web_search", args={"query": "Seoul palaces", "max_results": 1}, id="s"),
            ToolCall(name="web_fetch", args={"url": site + "/a"}, id="f"),
            ToolCall(name="web_fetch", args={"url": "http://169.254.169.254/latest/meta-data"}, id="m"),
        ]),
        "Bukchon has traditional houses.",
    ])
    result = ToolCallingAgent(model, [search, fetch]).invoke("Tell me about Bukchon")
    tool_messages = {m.tool_call_id: m for m in result.messages if getattr(m, "tool_call_id", None)}
    assert json.loads(tool_messages["s"].content)[0]["title"] == "Gyeongbokgung Palace - Visit Seoul"
    assert "Bukchon Hanok Village" in json.loads(tool_messages["f"].content)["text"]
    assert tool_messages["m"].status == "error" and "BlockedAddressError" in tool_messages["m"].content
