"""robots.txt as RFC 9309 reads it (wildcards, ``$`` anchors, longest match wins), against a
loopback site."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from maru.agents.web import crawl
from maru.net import NetworkPolicy

ROBOTS = (
    "User-agent: *\n"
    "Disallow: /*?session=\n"
    "Disallow: /*.pdf$\n"
    "Disallow: /archive/\n"
    "Allow: /archive/open\n"
)
LINKS = ["/p?session=abc", "/q", "/doc.pdf", "/doc.pdf?v=2", "/archive/old", "/archive/open"]


class Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, ctype = ROBOTS.encode(), "text/plain"
        else:
            links = "".join(f"<a href='{link}'>x</a>" for link in LINKS) if self.path == "/" else ""
            body, ctype = f"<html><body><p>page {self.path}</p>{links}</body></html>".encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_robots_wildcards_anchors_and_longest_match(site: str) -> None:
    policy = NetworkPolicy(allow=("127.0.0.1",))
    urls = [p.url.removeprefix(site) for p in crawl(site + "/", max_depth=1, max_pages=20, policy=policy)]
    assert urls == ["/", "/q", "/doc.pdf?v=2", "/archive/open"]
