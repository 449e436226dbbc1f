"""Summarise the page found for my question: search → fetch the best hit → summarise for the question.

    python examples/web_summary.py "What is Gyeongbokgung?"

The chain is three runnables: ``web_search`` (DuckDuckGo through ``ddgs``), ``fetch_page`` (through
maru's network guard: private and loopback addresses are refused, sizes and time capped) and a prompt
| model | parser that answers from the page and cites its URL.

Which parts are real:

- with ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set and internet access, everything: a live search,
  the live page and a real model through ``OpenAIChat``;
- otherwise (this machine has no internet) the program runs ``--offline``: a search response recorded
  from ddgs, a page served on loopback (explicitly allow-listed in the guard), and
  ``ScriptedChatModel``, a scripted test double that is not an LLM. The output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from maru import runnable
from maru.agents.web import fetch_page, search_web
from maru.net import NetworkPolicy
from maru.parsers import StrOutputParser
from maru.prompts import ChatPromptTemplate

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question in three sentences or fewer using only the page below, then give its "
            "URL as the source.\n\nPage title: {title}\nURL: {url}\n\n{text}",
        ),
        ("human", "{question}"),
    ]
)


def build_chain(model: Any, *, policy: NetworkPolicy | None = None, search_client: Any = None, max_chars: int = 6000) -> Any:
    """question → {question, title, url, text} → answer text."""

    @runnable(name="search_and_fetch", io_bound=True)
    def search_and_fetch(question: str) -> dict[str, Any]:
        hits = search_web(question, 3, client=search_client)
        if not hits:
            raise LookupError(f"the search found nothing for {question!r}")
        page = fetch_page(hits[0].url, policy)
        return {"question": question, "title": page.title or hits[0].title, "url": page.url, "text": page.text[:max_chars]}

    return search_and_fetch | PROMPT | model | StrOutputParser()


# ----------------------------------------------------------------------------- offline parts
PAGE = """<html><head><title>Gyeongbokgung Palace</title></head><body>
<nav>Home | Attractions | Food</nav>
<article><h1>Gyeongbokgung Palace</h1>
<p>Gyeongbokgung was the main royal palace of the Joseon dynasty. It was built in 1395, three years
after the dynasty was founded, and lies in northern Seoul.</p>
<p>Most of the palace was burned during the Japanese invasions of 1592 and rebuilt in 1867. Today it
houses the National Palace Museum and the National Folk Museum of Korea.</p>
<p>The changing of the royal guard takes place at Gwanghwamun gate several times a day.</p>
</article><footer>© Visit Seoul</footer></body></html>"""


class RecordedSearch:
    """Plays back the shape of a response recorded from ``ddgs.DDGS().text`` for this question."""

    def __init__(self, url: str) -> None:
        self.url = url

    def text(self, query: str, **kwargs: Any) -> list[dict[str, str]]:
        return [{"title": "Gyeongbokgung Palace - Visit Seoul", "href": self.url,
                 "body": "Gyeongbokgung was the main royal palace of the Joseon dynasty."}]


@contextmanager
def loopback_page() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/attractions/gyeongbokgung"
    finally:
        server.shutdown()


def scripted_summary(messages: list[Any]) -> str:
    """The test double's reply: the first two sentences of the page it was given, and the URL.
    (A real model would write its own summary.)"""
    system = messages[0].text
    url = system.split("URL: ", 1)[1].split("\n", 1)[0]
    body = system.split("\n\n", 2)[-1]
    sentences = [s.strip() for s in body.replace("\n", " ").split(". ") if s.strip()]
    return ". ".join(sentences[:2]).rstrip(".") + f". (source: {url})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default="What is Gyeongbokgung?")
    parser.add_argument("--offline", action="store_true", help="recorded search, loopback page, scripted model")
    args = parser.parse_args()
    configured = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
    if configured and not args.offline:
        from maru.models import OpenAIChat

        chain = build_chain(OpenAIChat())
        print(chain.invoke(args.question))
        return

    from maru.models.scripted import ScriptedChatModel

    print("offline: a search response recorded from ddgs, a page served on loopback (allow-listed),")
    print("and model: ScriptedChatModel (a scripted test double, not a real LLM).")
    print("Set OPENAI_API_KEY (or OPENAI_BASE_URL) for a live search and a real model.\n")
    with loopback_page() as url:
        chain = build_chain(
            ScriptedChatModel([scripted_summary], cycle=True),
            policy=NetworkPolicy(allow=("127.0.0.1",)),
            search_client=RecordedSearch(url),
        )
        print(f"question: {args.question}")
        print(f"answer: {chain.invoke(args.question)}")
        try:  # the guard at work: the same fetch without the allow-list is refused
            fetch_page(url)
        except PermissionError as exc:
            print(f"without the allow-list the guard refuses it: {type(exc).__name__}")
        print(json.dumps({"page_url": url}))


if __name__ == "__main__":
    main()
