"""Web tools for agents: search (DuckDuckGo through ``ddgs``), fetch and a same-site crawler.

Every request goes through :mod:`maru.net.guard`: private, loopback, link-local, multicast and
reserved targets are refused (after every redirect, with the connection pinned to the vetted
address), bodies and time are capped, and only allowed content types are read. A page comes back as
readable text (trafilatura, BeautifulSoup as fallback) plus its links.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from ..errors import BlockedAddressError, FetchError
from ..net.guard import NetworkPolicy, fetch
from .tools import Tool

__all__ = ["SearchResult", "WebPage", "crawl", "fetch_page", "make_web_tools", "web_fetch", "web_search"]

EXTRACT_GRACE_S = 5.0
"""How much longer than its fetch's deadline the ``web_fetch`` tool waits (text extraction)."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str


@dataclass(slots=True)
class WebPage:
    """A fetched page: final URL, title, readable text and the absolute links it holds."""

    url: str
    title: str | None
    text: str
    links: list[str] = field(default_factory=list)
    content_type: str = ""

    def to_dict(self, max_chars: int | None = None) -> dict[str, Any]:
        text = self.text if max_chars is None else self.text[:max_chars]
        return {"url": self.url, "title": self.title, "text": text, "links": self.links[:50]}


# ----------------------------------------------------------------------------- search
def search_web(query: str, max_results: int = 5, *, region: str = "wt-wt", client: Any = None) -> list[SearchResult]:
    """Search the web with DuckDuckGo (``ddgs``). ``client`` replaces ``ddgs.DDGS()`` (tests pass
    one that plays recorded responses)."""
    if not query.strip():
        raise ValueError("the search query is empty")
    if client is None:
        from ddgs import DDGS

        client = DDGS()
    rows = client.text(query, region=region, max_results=max_results) or []
    results = []
    for row in rows[:max_results]:
        url = row.get("href") or row.get("url") or ""
        if url:
            results.append(SearchResult(row.get("title", "").strip(), url, (row.get("body") or row.get("snippet") or "").strip()))
    return results


# ----------------------------------------------------------------------------- fetch
def fetch_page(url: str, policy: NetworkPolicy | None = None) -> WebPage:
    """Fetch ``url`` through the guard and extract its readable text and links."""
    from ..rag.loaders import html_to_document

    result = fetch(url, policy or NetworkPolicy())
    if result.media_type in ("text/html", "application/xhtml+xml"):
        html = result.text
        doc = html_to_document(html, result.url)
        return WebPage(result.url, doc.metadata.get("title"), doc.text, _links(html, result.url), result.media_type)
    if result.media_type == "application/pdf":
        from ..rag.loaders import pdf_to_documents

        pages = pdf_to_documents(result.content, result.url)
        return WebPage(result.url, None, "\n\n".join(p.text for p in pages), [], result.media_type)
    return WebPage(result.url, None, result.text, [], result.media_type)


def _links(html: str, base: str) -> list[str]:
    from bs4 import BeautifulSoup

    seen: dict[str, None] = {}
    for a in BeautifulSoup(html, "html.parser").find_all("a", href=True):
        href = str(a["href"]).strip()
        if not href or href.startswith(("javascript:", "mailto:", "tel:", "data:")):
            continue
        absolute = urldefrag(urljoin(base, href))[0]
        if urlsplit(absolute).scheme in ("http", "https"):
            seen.setdefault(absolute, None)
    return list(seen)


# ----------------------------------------------------------------------------- crawl
def crawl(
    start_url: str,
    *,
    max_depth: int = 2,
    max_pages: int = 20,
    policy: NetworkPolicy | None = None,
    respect_robots: bool = True,
    same_site: bool = True,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterator[WebPage]:
    """Breadth-first crawl from ``start_url``: pages of the same host only (``same_site``), at most
    ``max_depth`` links away and ``max_pages`` pages, honouring robots.txt. Pages are yielded as
    they are fetched. A page that fails is skipped (``on_error`` is told); a refused address
    (:class:`~maru.errors.BlockedAddressError`) stops the crawl."""
    policy = policy or NetworkPolicy()
    origin = urlsplit(start_url)
    robots = _robots(start_url, policy) if respect_robots else None
    queue: deque[tuple[str, int]] = deque([(urldefrag(start_url)[0], 0)])
    seen = {queue[0][0]}
    fetched = 0
    while queue and fetched < max_pages:
        url, depth = queue.popleft()
        if robots is not None and not robots(url):
            continue
        try:
            page = fetch_page(url, policy)
        except BlockedAddressError:
            raise
        except FetchError as exc:
            if on_error is not None:
                on_error(url, exc)
            continue
        fetched += 1
        yield page
        if depth >= max_depth:
            continue
        for link in page.links:
            parts = urlsplit(link)
            if same_site and (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                continue
            if link not in seen:
                seen.add(link)
                queue.append((link, depth + 1))


def _robots(start_url: str, policy: NetworkPolicy) -> Callable[[str], bool] | None:
    """Whether robots.txt lets ``policy.user_agent`` fetch a URL, as RFC 9309 reads it (``*``
    wildcards, ``$`` anchors, the longest match wins; the stdlib parser knows none of these);
    ``None`` when the site has no readable robots.txt."""
    from protego import Protego  # maru[agents]

    parts = urlsplit(start_url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    try:
        result = fetch(robots_url, policy, raise_for_status=False)
    except BlockedAddressError:
        raise
    except FetchError:
        return None  # no readable robots.txt: everything is allowed
    # A missing robots.txt (4xx) allows everything, which is what parsing an empty file means.
    rules = Protego.parse("" if result.status >= 400 else result.text)
    return lambda url: bool(rules.can_fetch(url, policy.user_agent))


# ----------------------------------------------------------------------------- tools
def make_web_tools(
    policy: NetworkPolicy | None = None,
    *,
    search_client: Any = None,
    max_chars: int = 8000,
    timeout_s: float = 30.0,
) -> list[Tool]:
    """``web_search`` and ``web_fetch`` as agent tools sharing one network policy.

    A fetch gets at most ``timeout_s`` (less when the policy says so) for everything, headers and
    body included, and closes its connection when that runs out; the tool itself waits a little
    longer (:data:`EXTRACT_GRACE_S`, for turning the page into text), so it is the fetch that ends
    first and no thread or socket is left behind."""
    policy = policy or NetworkPolicy()
    policy = replace(policy, timeout_s=min(policy.timeout_s, timeout_s))

    def web_search(query: str, max_results: int = 5) -> list[dict[str, str]]:
        """Search the web. Returns title, url and snippet of each result.

        Args:
            query: What to search for.
            max_results: How many results to return (1-10).
        """
        found = search_web(query, max(1, min(max_results, 10)), client=search_client)
        return [{"title": r.title, "url": r.url, "snippet": r.snippet} for r in found]

    def web_fetch(url: str) -> dict[str, Any]:
        """Fetch a web page and return its readable text, title and links.

        Args:
            url: An http(s) URL.
        """
        return fetch_page(url, policy).to_dict(max_chars)

    return [Tool(web_search, timeout_s=timeout_s), Tool(web_fetch, timeout_s=timeout_s + EXTRACT_GRACE_S)]


def web_search(query: str, max_results: int = 5, *, client: Any = None) -> list[SearchResult]:
    """Search the web (DuckDuckGo via ``ddgs``)."""
    return search_web(query, max_results, client=client)


def web_fetch(url: str, policy: NetworkPolicy | None = None) -> WebPage:
    """Fetch one page through the network guard."""
    return fetch_page(url, policy)
