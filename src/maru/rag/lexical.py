"""Lexical retrieval: language-aware analysis and BM25 (over ``bm25s``).

Dense embeddings miss exact terms (ids, names, numbers) and the default model is English-only, so
BM25 is the other half of hybrid search. Its quality depends on analysis, which depends on the
language: Korean needs morphemes (particles glue onto nouns: 한글을, 한글은, 한글이 are one word),
English wants stemming, Chinese and Japanese have no spaces (character bigrams). The language is
detected per document and per query, so one index holds a mixed corpus; Latin words inside CJK text
are analysed like English, so "Python 설치" still matches an English "python" document.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import _kiwi
from ..errors import ConfigurationError, IndexingError
from .documents import Document, as_documents
from .retrievers.base import Retriever

if TYPE_CHECKING:
    import bm25s

__all__ = [
    "BM25Index",
    "BM25Retriever",
    "Language",
    "analyze",
    "detect_language",
]

Language = Literal["ko", "zh", "ja", "en", "other"]

_META = "maru_bm25.json"
"""The index's description, the file :meth:`BM25Index.save` writes last."""

# ============================================================================ language detection


def _script(ch: str) -> str | None:
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
        return "kana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if ch.isalpha():
        return "latin" if o < 0x250 or 0x1E00 <= o <= 0x1EFF else "other"
    return None


def detect_language(text: str) -> Language:
    """The dominant script of ``text``: ``ko`` (Hangul), ``ja`` (Kana, with or without Han),
    ``zh`` (Han alone), ``en`` (Latin), ``other``. One CJK character carries about as much as a
    short Latin word, so CJK wins once it is a fifth of the letters: Korean with English terms is
    Korean."""
    counts = {"hangul": 0, "kana": 0, "han": 0, "latin": 0, "other": 0}
    for ch in text:
        s = _script(ch)
        if s is not None:
            counts[s] += 1
    cjk = counts["hangul"] + counts["kana"] + counts["han"]
    letters = cjk + counts["latin"] + counts["other"]
    if not letters:
        return "other"
    if cjk and cjk >= 0.2 * letters:
        if counts["hangul"] >= counts["kana"] + counts["han"]:
            return "ko"
        if counts["kana"] and counts["kana"] >= 0.1 * (counts["kana"] + counts["han"]):
            return "ja"
        return "ko" if counts["hangul"] > counts["han"] else "zh"
    return "en" if counts["latin"] >= counts["other"] else "other"


# ============================================================================ analyzers

_WORD = re.compile(r"\w+", re.UNICODE)

# Function words that match everywhere and say nothing about a topic.
_STOP_TEXT = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves"""
_EN_STOP = frozenset(_STOP_TEXT.split())


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


def _latin_terms(words: Iterable[str]) -> list[str]:
    """Lowercased, stop words removed, Snowball-stemmed."""
    kept = [w for w in (w.lower() for w in words) if w not in _EN_STOP]
    return list(_stemmer().stemWords(kept)) if kept else []


def _analyze_en(text: str) -> list[str]:
    return _latin_terms(_WORD.findall(unicodedata.normalize("NFKC", text)))


def _analyze_other(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text))]


# Content morphemes: nouns, verb and adjective stems, roots, numbers. Particles (J*), endings (E*),
# suffixes (XS*) and punctuation are dropped. Foreign words (SL) go through the English analyzer.
_KO_KEEP = ("NN", "NR", "NP", "VV", "VA", "XR", "SN", "SH")


def _analyze_ko(text: str) -> list[str]:
    try:
        tokens = _kiwi.tokenize(text)  # one Kiwi per process, shared with the cache's guard
    except ImportError as exc:  # pragma: no cover - installed with the rag extra
        raise ConfigurationError("Korean analysis needs kiwipiepy: pip install 'maru[rag]'") from exc
    out: list[str] = []
    latin: list[str] = []
    for form, tag in tokens:
        if tag == "SL":
            latin.append(form)
        elif tag.startswith(_KO_KEEP):
            out.append(form.lower())
    return out + _latin_terms(latin)


def _cjk_bigrams(text: str) -> list[str]:
    """Character bigrams over runs of Han/Kana (a lone character stands for itself); what lies
    between the runs (Latin words, numbers) goes through the English analyzer."""
    out: list[str] = []
    rest: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        else:
            out.extend(a + b for a, b in zip(run, run[1:], strict=False))
        run.clear()

    for ch in unicodedata.normalize("NFKC", text):
        if _script(ch) in ("han", "kana", "hangul"):
            run.append(ch)
            rest.append(" ")
        else:
            if run:
                flush()
            rest.append(ch)
    flush()
    return out + _analyze_en("".join(rest))


_ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "ko": _analyze_ko,
    "zh": _cjk_bigrams,
    "ja": _cjk_bigrams,
    "en": _analyze_en,
    "other": _analyze_other,
}


def analyze(text: str, language: Language | None = None) -> list[str]:
    """The index terms of ``text``, analysed for ``language`` (detected when ``None``)."""
    lang = language or detect_language(text)
    try:
        return _ANALYZERS[lang](text)
    except KeyError:
        raise ConfigurationError(
            f"unknown language {lang!r}: use one of {sorted(_ANALYZERS)} or None to detect it"
        ) from None


# ============================================================================ BM25


class BM25Index:
    """BM25 over documents analysed per language. ``k1`` saturates term frequency, ``b`` normalises
    for document length (the usual 1.2–2.0 and 0.75)."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs: list[Document] = []
        self._bm25: bm25s.BM25 | None = None
        self._vocab: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def build(self, docs: Iterable[Document]) -> BM25Index:
        """Index ``docs`` (replacing what was indexed before) and return ``self``."""
        import bm25s

        self.docs = [Document(d.text, dict(d.metadata), d.id) for d in as_documents(docs)]
        corpus = [analyze(d.text) for d in self.docs]
        model = bm25s.BM25(k1=self.k1, b=self.b)
        if any(corpus):  # bm25s cannot index a corpus without a single term
            model.index(corpus, show_progress=False)
        self._bm25 = model
        self._vocab = dict(getattr(model, "vocab_dict", None) or {})
        return self

    def scores(self, query: str) -> Any:
        """BM25 score of every document for ``query`` (a numpy array; zeros where no term matches)."""
        import numpy as np

        if self._bm25 is None:
            raise IndexingError("BM25Index is empty: call build(docs) (or load(dir)) before search")
        terms = [t for t in analyze(query) if t and t in self._vocab]
        if not terms or not self.docs:
            return np.zeros(len(self.docs), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float32)

    def search(self, query: str, k: int = 4) -> list[tuple[Document, float]]:
        """The ``k`` best documents with a positive score, best first; ``document.score`` set."""
        import numpy as np

        if k <= 0:
            return []
        scores = self.scores(query)
        n = int(np.count_nonzero(scores > 0))
        k = min(k, n)
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        out = []
        for i in top:
            src = self.docs[int(i)]
            score = float(scores[i])
            out.append((Document(src.text, dict(src.metadata), src.id, score), score))
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write the index (bm25s arrays) and the documents (``documents.jsonl``) to ``directory``."""
        if self._bm25 is None:
            raise IndexingError("nothing to save: call build(docs) first")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if self._vocab:
            self._bm25.save(str(path / "bm25"), show_progress=False)
        with open(path / "documents.jsonl", "w", encoding="utf-8") as f:
            for d in self.docs:
                f.write(json.dumps(d.to_dict(), ensure_ascii=False, default=str) + "\n")
        meta = {
            "format": "maru.bm25/1", "k1": self.k1, "b": self.b, "count": len(self.docs),
            "indexed": bool(self._vocab), "digests": _digests(path),
        }
        (path / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> BM25Index:
        """An index written by :meth:`save`."""
        import bm25s

        path = Path(directory)
        meta_file = path / _META
        if not meta_file.exists():
            raise IndexingError(f"{path} holds no saved BM25 index (no maru_bm25.json): save() one first")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        index = cls(k1=meta["k1"], b=meta["b"])
        with open(path / "documents.jsonl", encoding="utf-8") as f:
            index.docs = [Document.from_dict(json.loads(line)) for line in f if line.strip()]
        if len(index.docs) != meta["count"]:
            raise IndexingError(
                f"{path}: documents.jsonl has {len(index.docs)} documents but the index has "
                f"{meta['count']}; the directory is incomplete, save the index again"
            )
        if meta.get("indexed", bool(index.docs)):
            index._bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
            index._vocab = dict(index._bm25.vocab_dict or {})
        else:
            index._bm25 = bm25s.BM25(k1=index.k1, b=index.b)
        return index

    @staticmethod
    def verify(directory: str | Path, count: int | None = None) -> bool:
        """Whether ``directory`` holds a complete, undamaged saved index (of ``count`` documents
        when given): every file :meth:`save` wrote still has the digest it was saved with. An
        index saved before digests were recorded does not verify (save it again)."""
        path = Path(directory)
        try:
            meta = json.loads((path / _META).read_text(encoding="utf-8"))
            saved = meta["digests"]
            return (count is None or meta["count"] == count) and isinstance(saved, dict) and saved == _digests(path)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @staticmethod
    def saved_mark(directory: str | Path) -> tuple[int, int] | None:
        """What tells one saved index in ``directory`` from the next (``None``: none is saved):
        the modification time and size of the file :meth:`save` writes last. A reader that kept
        a loaded index compares marks to know it is stale without reading the index again."""
        try:
            stat = (Path(directory) / _META).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size


def _digests(path: Path) -> dict[str, str]:
    """SHA-256 of every file of a saved index but its metadata file, by path relative to it."""
    import hashlib

    out = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != _META):
        out[file.relative_to(path).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


class BM25Retriever(Retriever):
    """Keyword retrieval: the ``k`` best documents by BM25 (language-aware analysis)."""

    def __init__(self, docs: Sequence[Document] | BM25Index, k: int = 4, *,
                 k1: float = 1.5, b: float = 0.75) -> None:
        self.index = docs if isinstance(docs, BM25Index) else BM25Index(k1=k1, b=b).build(docs)
        self.k = k

    @classmethod
    def from_documents(cls, docs: Iterable[Document], k: int = 4, **kwargs: Any) -> BM25Retriever:
        return cls(list(docs), k, **kwargs)

    @classmethod
    def from_texts(cls, texts: Iterable[str], metadatas: Iterable[dict[str, Any]] | None = None,
                   k: int = 4, **kwargs: Any) -> BM25Retriever:
        metas = list(metadatas) if metadatas is not None else None
        docs = [Document(t, dict(metas[i]) if metas else {}) for i, t in enumerate(texts)]
        return cls(docs, k, **kwargs)

    def retrieve(self, query: str) -> list[Document]:
        return [doc for doc, _ in self.index.search(query, self.k)]

    def save(self, directory: str | Path) -> None:
        self.index.save(directory)

    @classmethod
    def load(cls, directory: str | Path, k: int = 4) -> BM25Retriever:
        return cls(BM25Index.load(directory), k)
