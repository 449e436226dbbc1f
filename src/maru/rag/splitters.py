"""Text splitters: documents cut into chunks that fit an embedding model or a prompt.

Every splitter works on character offsets into the original text, so each chunk knows exactly where
it came from: ``text[start_index:end_index] == chunk``. Chunks are trimmed of surrounding whitespace.

- :class:`RecursiveSplitter` cuts at the coarsest boundary that makes pieces small enough —
  paragraph, line, sentence, word, character — and packs the pieces into chunks of at most
  ``chunk_size`` (characters or tokens), the next chunk repeating up to ``chunk_overlap`` of the end
  of the previous one.
- :class:`SentenceSplitter` packs whole sentences (:func:`split_sentences` knows English
  abbreviations and decimals, Korean endings with or without a following space, and CJK full stops).
- :class:`MarkdownHeaderSplitter` cuts at Markdown headers (not inside fenced code) and records the
  header path in metadata; ``then=`` splits long sections further.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError
from .documents import Document, as_documents

__all__ = [
    "MarkdownHeaderSplitter",
    "RecursiveSplitter",
    "SentenceSplitter",
    "TextSplitter",
    "sentence_boundaries",
    "sentence_spans",
    "split_sentences",
]

Span = tuple[int, int]
Chunk = tuple[int, int, dict[str, Any]]
Separator = str | Callable[[str], Iterable[int]]
"""A literal string to cut at, or a function returning cut offsets into the text it is given."""


# ======================================================================= sentence boundaries
_TERMINATORS = re.compile(r"[.!?…。！？．‼⁇⁈⁉]+")
_CLOSERS = "\"'”’»)]}」』》〉）】〕〗〙〛〞＂＇"
_CJK_STOPS = frozenset("。！？．")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "approx", "dept", "est"}
    | {"gen", "col", "lt", "sgt", "capt", "rev", "hon", "pres", "gov", "sen", "rep", "inc", "ltd"}
    | {"co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov"}
    | {"dec", "al", "cf"}
)
_NUMBER_ABBREVIATIONS = frozenset(
    {"no", "nos", "vol", "vols", "pp", "p", "fig", "figs", "eq", "art", "sec", "ch"}
)
_DATE_OR_LIST = re.compile(r"(?:\d{2,4}\.[ \t]?\d{1,2}\.[ \t]?\d{1,2}|(?:^|\n)[ \t]*\d{1,3})$")
_WORD_BEFORE = re.compile(r"[A-Za-z][A-Za-z.]*$")
_DOTTED_INITIALS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u3131" <= ch <= "\u318e"


def _is_cjk(ch: str) -> bool:
    return _is_hangul(ch) or "\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff"


def _is_particle_start(ch: str) -> bool:
    """Hangul or hiragana right after a closing quote: a particle (``"됐다."고``, ``「はい。」と``)
    that makes the quote part of the sentence rather than its end."""
    return bool(ch) and (_is_hangul(ch) or "\u3040" <= ch <= "\u309f")


def _period_ends_sentence(text: str, start: int, end: int, quoted: bool) -> bool:
    """Whether the single '.' at ``start`` (closing quotes/brackets up to ``end``) ends a sentence."""
    prev = text[start - 1] if start else ""
    if end >= len(text):
        return True
    after = text[end]
    if not after.isspace():
        # No space: only Korean writes a new sentence straight after the period ("했다.그리고").
        # "...했다."고 (a quote followed by a particle) continues the sentence; 3.14 and a.b are not ends.
        return _is_hangul(prev) and not quoted and after not in ".,;:"
    rest = text[end:].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    if nxt.islower() and nxt.isascii():
        return False
    if prev.isdigit() and (nxt.isdigit() or _DATE_OR_LIST.search(text, max(0, start - 16), start)):
        return False  # a Korean-style date ("2019. 3. 1.") or a list marker ("1. First")
    word = _WORD_BEFORE.search(text, max(0, start - 24), start)
    if word is not None:
        w = word.group(0)
        if w.lower() in _ABBREVIATIONS or _DOTTED_INITIALS.fullmatch(w):
            return False
        if w.lower() in _NUMBER_ABBREVIATIONS and nxt.isdigit():
            return False
        if len(w) == 1 and w.isupper():  # an initial: "J. R. R. Tolkien"
            return False
    return True


def sentence_boundaries(text: str) -> list[int]:
    """Offsets in ``text`` where a sentence ends (after its closing quotes or brackets), plus
    paragraph breaks. Used as a separator by :class:`RecursiveSplitter`."""
    cuts: list[int] = []
    for match in _TERMINATORS.finditer(text):
        start, end = match.span()
        term = match.group(0)
        stop = end
        while stop < len(text) and text[stop] in _CLOSERS:
            stop += 1
        quoted = stop > end
        after = text[stop] if stop < len(text) else ""
        if any(ch in _CJK_STOPS for ch in term):
            ends = not (quoted and _is_particle_start(after))
        elif any(ch in "!?‼⁇⁈⁉" for ch in term):
            if not after or after.isspace():
                ends = not (
                    text[stop:].lstrip()[:1].islower() and text[stop:].lstrip()[:1].isascii()
                )
            else:
                ends = _is_cjk(after) and not (quoted and _is_particle_start(after))
        elif term == ".":
            ends = _period_ends_sentence(text, start, stop, quoted)
        else:  # an ellipsis ends a sentence only before a capital letter or at the end
            rest = text[stop:].lstrip()
            ends = not rest or (after.isspace() and rest[0].isupper())
        if ends:
            cuts.append(stop)
    cuts.extend(m.start() for m in _PARAGRAPH_BREAK.finditer(text))
    return sorted({c for c in cuts if 0 < c < len(text)})


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str) -> list[Span]:
    """``(start, end)`` of every sentence, trimmed of surrounding whitespace."""
    bounds = [0, *sentence_boundaries(text), len(text)]
    spans = (_trim(text, a, b) for a, b in zip(bounds, bounds[1:], strict=False))
    return [(a, b) for a, b in spans if b > a]


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (English, Korean, Chinese, Japanese), trimmed."""
    return [text[a:b] for a, b in sentence_spans(text)]


# ================================================================================ splitters
class TextSplitter:
    """Base of the splitters: subclasses implement :meth:`_chunks` (spans plus metadata)."""

    def _chunks(self, text: str) -> list[Chunk]:
        raise NotImplementedError

    def split_spans(self, text: str) -> list[Span]:
        """``(start, end)`` offsets of the chunks of ``text``."""
        return [(a, b) for a, b, _ in self._chunks(text)]

    def split_text(self, text: str) -> list[str]:
        return [text[a:b] for a, b, _ in self._chunks(text)]

    def split_documents(self, documents: Iterable[Document], *, positions: bool = True) -> list[Document]:
        """Chunks of every document. Each keeps its parent's metadata and adds ``start_index``,
        ``end_index`` (offsets into the parent's text) and ``chunk_index``; ids are left ``None``
        for the indexer to assign.

        ``positions=False`` leaves those three out: they change for every chunk after an edit, so
        an index kept in step with :func:`~maru.rag.indexing.index` would rewrite (re-embed) every
        later chunk of an edited document; without them only the chunks whose text changed are."""
        out: list[Document] = []
        for doc in as_documents(documents):
            for index, (a, b, extra) in enumerate(self._chunks(doc.text)):
                meta = {**doc.metadata, **extra}
                if positions:
                    meta.update(start_index=a, end_index=b, chunk_index=index)
                out.append(Document(text=doc.text[a:b], metadata=meta))
        return out

    # LangChain's name for the same operation.
    def transform_documents(self, documents: Iterable[Document]) -> list[Document]:
        return self.split_documents(documents)


DEFAULT_SEPARATORS: tuple[Separator, ...] = ("\n\n", "\n", sentence_boundaries, " ", "")


class RecursiveSplitter(TextSplitter):
    """Chunks of at most ``chunk_size`` characters (``length="chars"``) or tokens
    (``length="tokens"``, counted for ``model`` by :mod:`maru.usage.tokens`).

    ``separators`` are tried coarsest first; a piece still too long is cut at the next one. A
    separator is a string or a function returning cut offsets (like :func:`sentence_boundaries`);
    ``""`` cuts between characters. With ``keep_separator`` a string separator stays at the end of
    the piece before it (so a chunk ends with its sentence's punctuation); without, it is left out
    where it falls on a chunk edge. A single piece that cannot be cut (no separator left) may exceed
    ``chunk_size``.
    """

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        separators: Sequence[Separator] | None = None,
        length: Literal["chars", "tokens"] = "chars",
        model: str | None = None,
        keep_separator: bool = True,
    ) -> None:
        if chunk_size < 1:
            raise ConfigurationError(f"chunk_size must be at least 1, not {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ConfigurationError(
                f"chunk_overlap must be at least 0 and smaller than chunk_size ({chunk_size}), "
                f"not {chunk_overlap}"
            )
        if length not in ("chars", "tokens"):
            raise ConfigurationError(f"length must be 'chars' or 'tokens', not {length!r}")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators: tuple[Separator, ...] = tuple(
            DEFAULT_SEPARATORS if separators is None else separators
        )
        self.length = length
        self.model = model
        self.keep_separator = keep_separator
        self._count: Callable[[str], int] | None = None
        if length == "tokens":
            from ..usage.tokens import get_tokenizer

            self._count = get_tokenizer(model).count

    def _len(self, text: str, start: int, end: int) -> int:
        if self._count is None:
            return end - start
        return self._count(text[start:end])

    def _chunks(self, text: str) -> list[Chunk]:
        spans = self._merge(text, self._pieces(text, 0, len(text), 0))
        trimmed = (_trim(text, a, b) for a, b in spans)
        return [(a, b, {}) for a, b in trimmed if b > a]

    def _cut(self, text: str, start: int, end: int, separator: Separator) -> list[Span]:
        """``[start, end)`` cut at ``separator``: contiguous spans (separator kept) or the spans
        between separators."""
        if callable(separator):
            offsets = sorted({start + c for c in separator(text[start:end]) if 0 < c < end - start})
            bounds = [start, *offsets, end]
            return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        if separator == "":
            return [(i, i + 1) for i in range(start, end)]
        spans: list[Span] = []
        pos = start
        width = len(separator)
        while True:
            hit = text.find(separator, pos, end)
            if hit < 0:
                break
            spans.append((pos, hit + width if self.keep_separator else hit))
            pos = hit + width
        spans.append((pos, end))
        return [(a, b) for a, b in spans if b > a]

    def _pieces(self, text: str, start: int, end: int, level: int) -> list[Span]:
        """Pieces of ``[start, end)`` that each fit ``chunk_size`` (unless nothing can cut them)."""
        if self._len(text, start, end) <= self.chunk_size:
            return [(start, end)]
        for index in range(level, len(self.separators)):
            cuts = self._cut(text, start, end, self.separators[index])
            if len(cuts) > 1:
                break
        else:
            return [(start, end)]
        pieces: list[Span] = []
        for a, b in cuts:
            if self._len(text, a, b) <= self.chunk_size:
                pieces.append((a, b))
            else:
                pieces.extend(self._pieces(text, a, b, index + 1))
        return pieces

    def _merge(self, text: str, pieces: list[Span]) -> list[Span]:
        """Pack consecutive pieces into chunks of at most ``chunk_size``; each new chunk starts with
        the last pieces of the previous one that fit in ``chunk_overlap``."""
        chunks: list[Span] = []
        window: deque[Span] = deque()
        for start, end in pieces:
            if window and self._len(text, window[0][0], end) > self.chunk_size:
                chunks.append((window[0][0], window[-1][1]))
                while window and (
                    self._len(text, window[0][0], window[-1][1]) > self.chunk_overlap
                    or self._len(text, window[0][0], end) > self.chunk_size
                ):
                    window.popleft()
            window.append((start, end))
        if window:
            chunks.append((window[0][0], window[-1][1]))
        return chunks


class SentenceSplitter(RecursiveSplitter):
    """Chunks made of whole sentences (see :func:`split_sentences`); the overlap is whole sentences
    too. A sentence longer than ``chunk_size`` is cut at words, then characters."""

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        length: Literal["chars", "tokens"] = "chars",
        model: str | None = None,
    ) -> None:
        super().__init__(
            chunk_size,
            chunk_overlap,
            separators=(sentence_boundaries, " ", ""),
            length=length,
            model=model,
        )


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADER = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")


def _closes(fence: str, match: re.Match[str], line: str) -> bool:
    """A closing fence uses the opening's character, at least as many times, and nothing else."""
    marker = match.group(1)
    return marker[0] == fence[0] and len(marker) >= len(fence) and not line[match.end() :].strip()


class MarkdownHeaderSplitter(TextSplitter):
    """One chunk per section under the given headers; ``metadata`` names each enclosing header
    (``{"h1": "Guide", "h2": "Install"}``). Lines starting with ``#`` inside fenced code blocks
    are not headers. Sections with nothing under their header are dropped. ``strip_headers``
    leaves the header line out of the chunk; ``then`` splits each section further (its chunks
    carry the section's metadata)."""

    def __init__(
        self,
        headers: Sequence[tuple[str, str]] = (("#", "h1"), ("##", "h2"), ("###", "h3")),
        strip_headers: bool = False,
        then: TextSplitter | None = None,
    ) -> None:
        for marker, _ in headers:
            if not re.fullmatch(r"#{1,6}", marker):
                raise ConfigurationError(f"a Markdown header marker is 1 to 6 '#', not {marker!r}")
        self.headers = {len(marker): name for marker, name in headers}
        self.strip_headers = strip_headers
        self.then = then

    def _sections(self, text: str) -> list[Chunk]:
        sections: list[Chunk] = []
        stack: dict[int, str] = {}  # header level -> header text, for the enclosing headers
        start, body, meta = 0, 0, dict[str, Any]()
        fence: str | None = None
        pos = 0
        for line in text.splitlines(keepends=True):
            line_start, pos = pos, pos + len(line)
            content = line.rstrip("\r\n")
            fence_match = _FENCE.match(content)
            if fence is not None:
                if fence_match is not None and _closes(fence, fence_match, content):
                    fence = None
                continue
            if fence_match is not None:
                fence = fence_match.group(1)
                continue
            header = _HEADER.match(content)
            if header is None or len(header.group(1)) not in self.headers:
                continue
            if text[body:line_start].strip():
                sections.append((start, line_start, meta))
            level = len(header.group(1))
            stack = {lvl: name for lvl, name in stack.items() if lvl < level}
            stack[level] = (header.group(2) or "").strip()
            meta = {self.headers[lvl]: stack[lvl] for lvl in sorted(stack)}
            start, body = (pos if self.strip_headers else line_start), pos
        if text[body:].strip():
            sections.append((start, len(text), meta))
        trimmed = ((*_trim(text, a, b), m) for a, b, m in sections)
        return [(a, b, m) for a, b, m in trimmed if b > a]

    def _chunks(self, text: str) -> list[Chunk]:
        sections = self._sections(text)
        if self.then is None:
            return sections
        out: list[Chunk] = []
        for start, end, meta in sections:
            for a, b, extra in self.then._chunks(text[start:end]):
                out.append((start + a, start + b, {**meta, **extra}))
        return out
