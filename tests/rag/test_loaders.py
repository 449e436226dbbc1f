"""Loaders on small files written here, and the web loader against a loopback server."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from maru.errors import BlockedAddressError, FetchError, LoaderError
from maru.net import NetworkPolicy
from maru.rag.documents import Document
from maru.rag.loaders import (
    CSVLoader,
    DirectoryLoader,
    HTMLLoader,
    JSONLLoader,
    PDFLoader,
    TextLoader,
    WebLoader,
    decode_text,
    load,
)

ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>Retrieval notes</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/blog">Blog</a> | <a href="/contact">Contact us</a></nav>
<header><div class="banner">Subscribe to our newsletter for weekly updates!</div></header>
<main><article>
<h1>Why chunk size matters</h1>
<p>Retrieval quality depends on how documents are split into chunks before they are embedded.
Chunks that are too long dilute the meaning of a passage, and chunks that are too short lose context.</p>
<p>검색 품질은 문서를 어떻게 나누는지에 달려 있다. 너무 긴 조각은 의미를 흐리게 한다.</p>
</article></main>
<footer>Copyright 2024 Example Corp. All rights reserved. Privacy policy. Terms of use.</footer>
<script>var tracking = "do not index me";</script>
</body></html>"""


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page, written by hand."""
    objects: list[bytes] = []
    n = len(pages)
    page_ids = [4 + 2 * i for i in range(n)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "notes.md").write_text("# Notes\n\nMarkdown body.", encoding="utf-8")
    (root / "sub" / "korean.txt").write_bytes("한국어 문서입니다.".encode("cp949"))
    (root / "sub" / "page.html").write_text(ARTICLE, encoding="utf-8")
    (root / "sub" / "doc.pdf").write_bytes(make_pdf(["First page text", "Second page text"]))
    (root / "rows.csv").write_text("title,body,year\nA,alpha text,2020\nB,beta text,2021\n")
    (root / "items.jsonl").write_text(
        json.dumps({"text": "one", "lang": "en"})
        + "\n\n"
        + json.dumps({"text": "둘", "lang": "ko"})
        + "\n",
        encoding="utf-8",
    )
    (root / "image.png").write_bytes(b"\x89PNG\r\n")
    (root / ".hidden" / "secret.txt").write_text("hidden")
    (root / "skip.log.txt").write_text("excluded")
    return root


# ============================================================================ file loaders
def test_text_loader_detects_encodings(tmp_path: Path) -> None:
    utf8 = tmp_path / "a.txt"
    utf8.write_text("héllo 안녕", encoding="utf-8")
    cp949 = tmp_path / "b.txt"
    cp949.write_bytes("가나다라 마바사".encode("cp949"))
    bom = tmp_path / "c.md"
    bom.write_bytes("\ufeff# Title".encode())
    [doc] = TextLoader(utf8).load()
    assert doc == Document("héllo 안녕", {"source": str(utf8), "encoding": "utf-8"})
    assert TextLoader(cp949).load()[0].text == "가나다라 마바사"
    assert TextLoader(cp949).load()[0].metadata["encoding"] == "cp949"
    assert TextLoader(bom).load()[0].text == "# Title"
    assert decode_text("ü".encode("utf-16")) == ("ü", "utf-16")
    with pytest.raises(LoaderError, match="ascii"):
        TextLoader(utf8, encoding="ascii").load()


def test_loaders_are_lazy_and_report_missing_paths(tmp_path: Path) -> None:
    loader = TextLoader(tmp_path / "nope.txt")  # constructing does not touch the file
    with pytest.raises(LoaderError, match="does not exist"):
        next(loader.lazy_load())
    with pytest.raises(LoaderError, match="not a file"):
        TextLoader(tmp_path).load()


def test_html_loader_keeps_main_text_and_title(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(ARTICLE, encoding="utf-8")
    [doc] = HTMLLoader(path).load()
    assert "Chunks that are too long dilute" in doc.text
    assert "검색 품질은" in doc.text
    for boilerplate in ("newsletter", "Copyright", "tracking", "Contact us"):
        assert boilerplate not in doc.text
    assert doc.metadata["source"] == str(path)
    assert doc.metadata["title"]


def test_html_loader_falls_back_to_visible_text(tmp_path: Path) -> None:
    path = tmp_path / "tiny.html"
    path.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><div>Just a label</div></body></html>"
    )
    [doc] = HTMLLoader(path).load()
    assert "Just a label" in doc.text
    assert "p{}" not in doc.text


def test_pdf_loader_one_document_per_page(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(make_pdf(["Hello PDF world", "Page two here"]))
    docs = PDFLoader(path).load()
    assert [d.text.strip() for d in docs] == ["Hello PDF world", "Page two here"]
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert all(d.metadata["total_pages"] == 2 and d.metadata["source"] == str(path) for d in docs)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"this is not a pdf")
    with pytest.raises(LoaderError, match="PDF"):
        PDFLoader(broken).load()


def test_csv_loader_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('title,body,year\nA,"alpha, with comma",2020\nB,beta,2021\n', encoding="utf-8")
    docs = CSVLoader(path).load()
    assert docs[0].text == "title: A\nbody: alpha, with comma\nyear: 2020"
    assert docs[1].metadata == {"source": str(path), "row": 1}
    docs = CSVLoader(path, content_columns=["body"], metadata_columns=["title", "year"]).load()
    assert [d.text for d in docs] == ["body: alpha, with comma", "body: beta"]
    assert docs[0].metadata == {"source": str(path), "row": 0, "title": "A", "year": "2020"}
    with pytest.raises(LoaderError, match="missing_col"):
        CSVLoader(path, content_columns=["missing_col"]).load()
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert CSVLoader(tsv).load()[0].text == "a: 1\nb: 2"


def test_jsonl_loader(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lines = [{"body": "첫째", "lang": "ko", "n": 1}, {"body": "second", "lang": "en", "n": 2}]
    path.write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n", encoding="utf-8"
    )
    docs = JSONLLoader(path, text_key="body").load()
    assert [d.text for d in docs] == ["첫째", "second"]
    assert docs[0].metadata == {"source": str(path), "line": 1, "lang": "ko", "n": 1}
    docs = JSONLLoader(path, text_key="body", metadata_keys=["lang"]).load()
    assert docs[1].metadata == {"source": str(path), "line": 2, "lang": "en"}
    with pytest.raises(LoaderError, match="line 1 has no 'text'"):
        JSONLLoader(path).load()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    loader = JSONLLoader(bad).lazy_load()
    assert next(loader).text == "ok"  # lazy: the first line arrives before the bad one is read
    with pytest.raises(LoaderError, match="line 2 is not valid JSON"):
        next(loader)


# ========================================================================= directory + load
def test_directory_loader_order_filters_and_types(corpus: Path) -> None:
    loader = DirectoryLoader(corpus, exclude=["*.log.txt"])
    rel = [p.relative_to(corpus).as_posix() for p in loader.files()]
    assert rel == [
        "items.jsonl",
        "notes.md",
        "rows.csv",
        "sub/doc.pdf",
        "sub/korean.txt",
        "sub/page.html",
    ]
    docs = loader.load()
    sources = [Path(d.metadata["source"]).name for d in docs]
    assert sources == ["items.jsonl"] * 2 + ["notes.md"] + ["rows.csv"] * 2 + ["doc.pdf"] * 2 + [
        "korean.txt",
        "page.html",
    ]
    assert docs == DirectoryLoader(corpus, exclude=["*.log.txt"]).load()  # deterministic
    only_text = DirectoryLoader(corpus, glob="**/*.txt", include_hidden=True).load()
    assert sorted(Path(d.metadata["source"]).name for d in only_text) == [
        "korean.txt",
        "secret.txt",
        "skip.log.txt",
    ]
    md_only = DirectoryLoader(corpus, loader_for_suffix={".MD": TextLoader}).load()
    assert [d.text for d in md_only] == ["# Notes\n\nMarkdown body."]


def test_directory_loader_bad_files_warn_or_raise(corpus: Path) -> None:
    (corpus / "sub" / "broken.pdf").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="broken.pdf"):
        docs = DirectoryLoader(corpus).load()
    assert len(docs) == 10
    with pytest.raises(LoaderError, match="broken.pdf"):
        DirectoryLoader(corpus, on_error="raise").load()
    with pytest.raises(LoaderError, match="does not exist"):
        DirectoryLoader(corpus / "missing").load()
    with pytest.raises(LoaderError, match="on_error"):
        DirectoryLoader(corpus, on_error="ignore")  # type: ignore[arg-type]


def test_load_picks_the_loader(corpus: Path) -> None:
    assert [d.metadata["page"] for d in load(corpus / "sub" / "doc.pdf")] == [1, 2]
    assert load(str(corpus / "notes.md"))[0].text.startswith("# Notes")
    assert len(load(corpus / "rows.csv", metadata_columns=["year"])) == 2
    assert len(load(corpus / "sub")) == 4
    with pytest.raises(LoaderError, match="no loader for .png"):
        load(corpus / "image.png")
    with pytest.raises(LoaderError, match="does not exist"):
        load(corpus / "nothing.txt")


# ==================================================================================== web
@pytest.fixture
def site(corpus: Path) -> Iterator[str]:
    """Serves the corpus folder on a loopback port."""
    handler: Any = functools.partial(QuietHandler, directory=str(corpus))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


LOOPBACK = NetworkPolicy(allow=("127.0.0.1",))


def test_web_loader_parses_by_content_type(site: str) -> None:
    urls = [f"{site}/sub/page.html", f"{site}/sub/doc.pdf", f"{site}/notes.md"]
    docs = WebLoader(urls, policy=LOOPBACK).load()
    html, page1, page2, md = docs
    assert "Chunks that are too long dilute" in html.text and "newsletter" not in html.text
    assert html.metadata["source"] == urls[0] and html.metadata["content_type"] == "text/html"
    assert page1.text.strip() == "First page text" and page2.metadata["page"] == 2
    assert page1.metadata["source"] == urls[1]
    assert md.text == "# Notes\n\nMarkdown body."
    assert load(urls[0], policy=LOOPBACK)[0].metadata["url"] == urls[0]


def test_web_loader_refuses_loopback_unless_allowed(site: str) -> None:
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        WebLoader(f"{site}/notes.md").load()
    with pytest.raises(BlockedAddressError):
        load(f"{site}/notes.md")


def test_web_loader_errors_warn_or_raise(site: str) -> None:
    url = f"{site}/image.png"  # image/png is not an allowed content type
    with pytest.raises(FetchError, match="image/png"):
        WebLoader(url, policy=LOOPBACK).load()
    with pytest.warns(RuntimeWarning, match="image.png"):
        docs = WebLoader([url, f"{site}/notes.md"], policy=LOOPBACK, on_error="warn").load()
    assert [d.metadata["source"] for d in docs] == [f"{site}/notes.md"]
