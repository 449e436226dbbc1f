"""Document loaders: files, folders and URLs turned into :class:`Document` objects, lazily.

Every loader has ``lazy_load()`` (an iterator, so a large folder or file never sits in memory at
once) and ``load()`` (a list). Every document's metadata has ``"source"``: the file path or the URL.
Ids are left ``None``: the indexer gives documents their stable ids.

:func:`load` picks the loader for a path, a folder or an ``http(s)`` URL.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import FetchError, LoaderError
from ..net.guard import NetworkPolicy
from .documents import Document, as_documents

__all__ = [
    "CSVLoader",
    "DirectoryLoader",
    "HTMLLoader",
    "JSONLLoader",
    "Loader",
    "PDFLoader",
    "TextLoader",
    "WebLoader",
    "decode_text",
    "html_to_document",
    "load",
    "loader_for",
    "pdf_to_documents",
]

FALLBACK_ENCODINGS: tuple[str, ...] = ("cp949", "gb18030", "shift_jis", "cp1252")
"""Tried in order when a file is not UTF-8 (Korean, Chinese, Japanese, Western legacy encodings)."""

PathLike = str | Path


class Loader:
    """Base of every loader: subclasses implement :meth:`lazy_load`."""

    def lazy_load(self) -> Iterator[Document]:
        raise NotImplementedError

    def load(self) -> list[Document]:
        return list(self.lazy_load())

    def __iter__(self) -> Iterator[Document]:
        return self.lazy_load()


# ================================================================================== helpers
def _existing_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise LoaderError(
            f"{str(p)!r} does not exist; check the path (relative paths start at {Path.cwd()})"
        )
    if not p.is_file():
        raise LoaderError(f"{str(p)!r} is not a file; use DirectoryLoader for a folder")
    return p


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"cannot read {str(path)!r}: {exc}") from exc


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding used)``.

    With ``encoding`` given it is used strictly. Otherwise: a BOM decides; then UTF-8; then the
    :data:`FALLBACK_ENCODINGS` in order; Latin-1 (which never fails) last.
    """
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise LoaderError(
                f"the data is not valid {encoding}: {exc}; pass the right encoding"
            ) from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for candidate in ("utf-8-sig", *FALLBACK_ENCODINGS):
        try:
            return data.decode(candidate), "utf-8" if candidate == "utf-8-sig" else candidate
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _html_charset(data: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", data[:2048], re.I)
    return match.group(1).decode("ascii", "replace") if match else None


# ================================================================================= parsers
def html_to_document(html: str, source: str, metadata: Mapping[str, Any] | None = None) -> Document:
    """The main text of an HTML page (navigation, headers, footers and scripts left out).

    trafilatura finds the main content; when it finds none (a page that is mostly markup), the
    visible text from BeautifulSoup is used instead. ``metadata["title"]`` is the page title.
    """
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True) or ""
    meta = trafilatura.extract_metadata(html)
    title = meta.title if meta is not None and meta.title else None
    if not text.strip() or title is None:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(html, "html.parser")
        if title is None and soup.title is not None and soup.title.string:
            title = soup.title.string.strip()
        if not text.strip():
            for tag in soup(["script", "style", "noscript", "template"]):
                tag.decompose()
            lines = (line.strip() for line in soup.get_text(separator="\n").splitlines())
            text = "\n".join(line for line in lines if line)
    out: dict[str, Any] = {"source": source, **(metadata or {})}
    if title:
        out["title"] = title
    return Document(text=text, metadata=out)


def pdf_to_documents(
    data: bytes | io.BufferedIOBase | Path,
    source: str,
    password: str | None = None,
    include_empty: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Document]:
    """One document per PDF page; ``metadata["page"]`` counts from 1, ``"total_pages"`` is the
    page count. Pages without extractable text (scans) are skipped unless ``include_empty``."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    stream: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        reader = PdfReader(stream, password=password)
        total = len(reader.pages)
    except (PdfReadError, ValueError, OSError) as exc:
        raise LoaderError(f"{source!r} is not a readable PDF: {exc}") from exc
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # pypdf raises many kinds on broken content streams
            raise LoaderError(
                f"{source!r}: cannot extract the text of page {number}: {exc}"
            ) from exc
        if not text.strip() and not include_empty:
            continue
        out = {"source": source, **(metadata or {}), "page": number, "total_pages": total}
        yield Document(text=text, metadata=out)


# ================================================================================= loaders
class TextLoader(Loader):
    """A plain-text or Markdown file as one document. The encoding is detected unless given
    (see :func:`decode_text`); ``metadata["encoding"]`` says which one was used."""

    def __init__(self, path: PathLike, encoding: str | None = None) -> None:
        self.path = Path(path)
        self.encoding = encoding

    def lazy_load(self) -> Iterator[Document]:
        path = _existing_file(self.path)
        try:
            text, used = decode_text(_read_bytes(path), self.encoding)
        except LoaderError as exc:
            raise LoaderError(f"{str(path)!r}: {exc}") from exc
        yield Document(text=text, metadata={"source": str(path), "encoding": used})


class HTMLLoader(Loader):
    """An HTML file as one document holding its main text (see :func:`html_to_document`)."""

    def __init__(self, path: PathLike, encoding: str | None = None) -> None:
        self.path = Path(path)
        self.encoding = encoding

    def lazy_load(self) -> Iterator[Document]:
        path = _existing_file(self.path)
        data = _read_bytes(path)
        if self.encoding is not None:
            html, _ = decode_text(data, self.encoding)
        else:
            try:
                html, _ = decode_text(data, _html_charset(data))
            except LoaderError:  # the page's <meta charset> is wrong: detect instead
                html, _ = decode_text(data)
        yield html_to_document(html, str(path))


class PDFLoader(Loader):
    """A PDF file, one document per page (see :func:`pdf_to_documents`)."""

    def __init__(
        self, path: PathLike, password: str | None = None, include_empty: bool = False
    ) -> None:
        self.path = Path(path)
        self.password = password
        self.include_empty = include_empty

    def lazy_load(self) -> Iterator[Document]:
        path = _existing_file(self.path)
        yield from pdf_to_documents(_read_bytes(path), str(path), self.password, self.include_empty)


class CSVLoader(Loader):
    """One document per row. The text is ``column: value`` lines of ``content_columns`` (default:
    every column not in ``metadata_columns``); ``metadata_columns`` go to metadata as strings, with
    ``"row"`` (counting data rows from 0)."""

    def __init__(
        self,
        path: PathLike,
        content_columns: Sequence[str] | None = None,
        metadata_columns: Sequence[str] = (),
        delimiter: str | None = None,
        encoding: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.content_columns = list(content_columns) if content_columns is not None else None
        self.metadata_columns = list(metadata_columns)
        self.delimiter = delimiter
        self.encoding = encoding

    def lazy_load(self) -> Iterator[Document]:
        path = _existing_file(self.path)
        text, _ = decode_text(_read_bytes(path), self.encoding)
        delimiter = self.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        wanted = [*(self.content_columns or []), *self.metadata_columns]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise LoaderError(
                f"{str(path)!r} has no column(s) {missing}; its columns are {columns}"
            )
        content = self.content_columns or [c for c in columns if c not in self.metadata_columns]
        for row_number, row in enumerate(reader):
            body = "\n".join(f"{c}: {(row.get(c) or '').strip()}" for c in content)
            meta: dict[str, Any] = {"source": str(path), "row": row_number}
            meta.update({c: row.get(c) or "" for c in self.metadata_columns})
            yield Document(text=body, metadata=meta)


class JSONLLoader(Loader):
    """One document per JSON line: the text is ``record[text_key]``; ``metadata_keys`` (default:
    every other key) go to metadata, with ``"line"`` (counting from 1). Blank lines are skipped."""

    def __init__(
        self,
        path: PathLike,
        text_key: str = "text",
        metadata_keys: Sequence[str] | None = None,
        encoding: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.text_key = text_key
        self.metadata_keys = list(metadata_keys) if metadata_keys is not None else None
        self.encoding = encoding

    def lazy_load(self) -> Iterator[Document]:
        path = _existing_file(self.path)
        try:
            handle = path.open(encoding=self.encoding or "utf-8-sig")
        except OSError as exc:
            raise LoaderError(f"cannot read {str(path)!r}: {exc}") from exc
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                yield self._document(path, number, line)

    def _document(self, path: Path, number: int, line: str) -> Document:
        where = f"{str(path)!r} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(
                f"{where} is not valid JSON ({exc}); fix or remove that line"
            ) from exc
        if not isinstance(record, dict) or self.text_key not in record:
            raise LoaderError(
                f"{where} has no {self.text_key!r} field; pass text_key= naming the field with the text"
            )
        text = record[self.text_key]
        if not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        keys = (
            self.metadata_keys
            if self.metadata_keys is not None
            else [k for k in record if k != self.text_key]
        )
        meta: dict[str, Any] = {"source": str(path), "line": number}
        meta.update({k: record[k] for k in keys if k in record})
        return Document(text=text, metadata=meta)


LoaderFactory = Callable[[Path], Loader]

DEFAULT_LOADERS: dict[str, LoaderFactory] = {
    ".txt": TextLoader,
    ".text": TextLoader,
    ".md": TextLoader,
    ".markdown": TextLoader,
    ".rst": TextLoader,
    ".html": HTMLLoader,
    ".htm": HTMLLoader,
    ".xhtml": HTMLLoader,
    ".pdf": PDFLoader,
    ".csv": CSVLoader,
    ".tsv": CSVLoader,
    ".jsonl": JSONLLoader,
    ".ndjson": JSONLLoader,
}
"""File suffix (lower case) → loader. Pass your own mapping to :class:`DirectoryLoader` to change it."""


def loader_for(path: PathLike, loaders: Mapping[str, LoaderFactory] | None = None) -> Loader:
    """The loader for one file, chosen by its suffix."""
    p = _existing_file(path)
    table = DEFAULT_LOADERS if loaders is None else loaders
    factory = table.get(p.suffix.lower())
    if factory is None:
        raise LoaderError(
            f"no loader for {p.suffix or 'files without a suffix'} ({str(p)!r}); supported: "
            f"{', '.join(sorted(table))}. Use a loader class directly (TextLoader for plain text) "
            "or pass a suffix mapping"
        )
    return factory(p)


class DirectoryLoader(Loader):
    """Every supported file under ``path`` matching ``glob``, in sorted path order (so two runs
    yield the same documents in the same order).

    ``exclude`` holds glob patterns matched against the path relative to ``path`` (and against the
    file name). Hidden files and folders are skipped unless ``include_hidden``. Files whose suffix
    has no loader are skipped silently; a file that fails to load is skipped with a warning
    (``on_error="warn"``), or stops the load (``on_error="raise"``).
    """

    def __init__(
        self,
        path: PathLike,
        glob: str = "**/*",
        exclude: Sequence[str] = (),
        loader_for_suffix: Mapping[str, LoaderFactory] | None = None,
        on_error: Literal["warn", "raise"] = "warn",
        include_hidden: bool = False,
    ) -> None:
        if on_error not in ("warn", "raise"):
            raise LoaderError(f"on_error must be 'warn' or 'raise', not {on_error!r}")
        self.path = Path(path)
        self.glob = glob
        self.exclude = tuple(exclude)
        self.loaders = dict(DEFAULT_LOADERS if loader_for_suffix is None else loader_for_suffix)
        self.loaders = {k.lower(): v for k, v in self.loaders.items()}
        self.on_error = on_error
        self.include_hidden = include_hidden

    def files(self) -> list[Path]:
        """The files this loader will read, in order."""
        if not self.path.is_dir():
            what = "does not exist" if not self.path.exists() else "is not a folder"
            raise LoaderError(f"{str(self.path)!r} {what}; give DirectoryLoader a folder")
        found = []
        for p in self.path.glob(self.glob):
            rel = p.relative_to(self.path)
            if not self.include_hidden and any(part.startswith(".") for part in rel.parts):
                continue
            if any(
                fnmatch.fnmatch(rel.as_posix(), pat) or fnmatch.fnmatch(p.name, pat)
                for pat in self.exclude
            ):
                continue
            if p.is_file() and p.suffix.lower() in self.loaders:
                found.append(p)
        return sorted(found, key=lambda p: p.relative_to(self.path).as_posix())

    def lazy_load(self) -> Iterator[Document]:
        for path in self.files():
            try:
                docs = list(as_documents(self.loaders[path.suffix.lower()](path).lazy_load()))
            except (LoaderError, OSError, UnicodeError, ValueError) as exc:
                if self.on_error == "raise":
                    raise LoaderError(f"cannot load {str(path)!r}: {exc}") from exc
                warnings.warn(f"skipped {str(path)!r}: {exc}", RuntimeWarning, stacklevel=2)
                continue
            yield from docs


class WebLoader(Loader):
    """Pages fetched through the network guard (:func:`maru.net.fetch`), parsed by content type:
    HTML → main text, PDF → one document per page, other text types → the text as is.
    ``metadata`` has ``"source"`` (the URL asked for), ``"url"`` (the final one after redirects)
    and ``"content_type"``. Private and loopback hosts are refused unless ``policy`` allows them."""

    def __init__(
        self,
        urls: str | Iterable[str],
        policy: NetworkPolicy | None = None,
        on_error: Literal["warn", "raise"] = "raise",
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.policy = policy or NetworkPolicy()
        self.on_error = on_error

    def lazy_load(self) -> Iterator[Document]:
        from ..net.guard import fetch

        for url in self.urls:
            try:
                result = fetch(url, self.policy)
            except FetchError as exc:  # BlockedAddressError always propagates: it is a refusal
                if self.on_error == "raise":
                    raise
                warnings.warn(f"skipped {url!r}: {exc}", RuntimeWarning, stacklevel=2)
                continue
            extra = {"url": result.url, "content_type": result.media_type}
            if result.media_type == "application/pdf":
                yield from pdf_to_documents(result.content, url, metadata=extra)
            elif result.media_type in ("text/html", "application/xhtml+xml"):
                yield html_to_document(result.text, url, metadata=extra)
            else:
                yield Document(text=result.text, metadata={"source": url, **extra})


def load(
    source: PathLike, *, policy: NetworkPolicy | None = None, **options: Any
) -> list[Document]:
    """Load a file, a folder (every supported file in it) or an ``http(s)`` URL (through the guard
    with ``policy``). ``options`` go to the loader chosen."""
    text = str(source)
    if re.match(r"(?i)^https?://", text):
        return WebLoader(text, policy=policy, **options).load()
    path = Path(source)
    if path.is_dir():
        return DirectoryLoader(path, **options).load()
    if options:
        suffix_loader = DEFAULT_LOADERS.get(path.suffix.lower())
        if suffix_loader is not None and path.is_file():
            return suffix_loader(path, **options).load()  # type: ignore[call-arg]
    return loader_for(path).load()
