"""``KnowledgeBase``: the folder ``maru ingest`` builds and ``maru ask`` answers from.

One folder holds everything, so it can be copied or deleted as a unit:

- ``vectors/``: the embedded default vector store (:class:`~maru.rag.stores.local.LocalStore`);
- ``records.sqlite``: the record manager (stable chunk ids and content hashes);
- ``files.json``: size, mtime and SHA-256 of every ingested file, so a re-run does not even read
  unchanged files, and removed files have their chunks deleted;
- ``bm25/``: the lexical index, rebuilt from the store whenever something changed.

Answers: hybrid retrieval (BM25 + dense, adaptively fused), then either a configured chat model
writes an answer citing the passages as ``[n]``, or — offline — the best sentences of the top
passages are picked by embedding similarity and word overlap with the question, each cited.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoaderError
from .documents import Document

if TYPE_CHECKING:
    from ..models.embeddings import Embeddings
    from .indexing import IndexResult
    from .retrievers.base import Retriever
    from .stores.local import LocalStore

__all__ = ["Answer", "Citation", "IngestReport", "KnowledgeBase"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` — stages: ``scan``, ``embed``, ``bm25``."""


@dataclass(slots=True)
class Citation:
    n: int
    source: str
    text: str
    score: float | None = None


@dataclass(slots=True)
class Answer:
    """An answer with the passages it cites; ``mode`` is ``"llm"`` or ``"extractive"``."""

    question: str
    text: str
    citations: list[Citation]
    mode: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class IngestReport:
    files_seen: int
    files_unchanged: int
    files_removed: int
    chunks: int
    result: IndexResult | None = None
    sources: list[str] = field(default_factory=list)


class KnowledgeBase:
    """Ingest files into a folder and answer questions from it."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ".maru/kb",
        *,
        embeddings: Embeddings | None = None,
        chunk_size: int = 800,
        chunk_overlap: int = 120,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._embeddings = embeddings
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self._store: LocalStore | None = None
        self._records: Any = None

    # ------------------------------------------------------------------ parts
    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            from .embeddings import LocalEmbeddings

            self._embeddings = LocalEmbeddings()
        return self._embeddings

    @property
    def store(self) -> LocalStore:
        if self._store is None:
            from .stores.local import LocalStore

            self._store = LocalStore(self.path / "vectors", embeddings=self.embeddings)
        return self._store

    @property
    def records(self) -> Any:
        if self._records is None:
            from .records import RecordManager

            self._records = RecordManager(f"sqlite:///{self.path / 'records.sqlite'}", namespace="kb")
        return self._records

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        glob: str = "**/*",
        progress: Progress | None = None,
    ) -> IngestReport:
        """Index files (or folders of files) given; re-running skips unchanged files without reading
        them, re-indexes changed ones and deletes the chunks of files that disappeared from the
        given folders."""
        from .indexing import delete_sources, index
        from .loaders import DEFAULT_LOADERS, loader_for
        from .splitters import RecursiveSplitter

        files = _collect(paths, glob, set(DEFAULT_LOADERS))
        manifest = self._read_manifest()
        roots = {str(Path(p).resolve()) for p in paths}
        current: dict[str, dict[str, Any]] = {}
        changed: list[Path] = []
        for i, file in enumerate(files, 1):
            key = str(file)
            stat = file.stat()
            old = manifest.get(key)
            if old and old["size"] == stat.st_size and old["mtime"] == stat.st_mtime_ns:
                current[key] = old
            else:
                digest = _sha256(file)
                current[key] = {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": digest}
                if not old or old.get("sha256") != digest:
                    changed.append(file)
            if progress:
                progress("scan", i, len(files))
        removed = [
            k for k in manifest
            if k not in current and any(k == r or k.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
        ]
        splitter = RecursiveSplitter(self.chunk_size, self.chunk_overlap)
        chunks: list[Document] = []
        for file in changed:
            try:
                docs = loader_for(file).load()
            except LoaderError:
                current.pop(str(file), None)
                continue
            for doc in docs:
                doc.metadata["source"] = str(file)
            chunks.extend(splitter.split_documents(docs))
        result = None
        if chunks:
            if progress:
                progress("embed", 0, len(chunks))
            result = index(
                _counting(chunks, progress), self.store, self.records, cleanup="incremental", batch_size=256
            )
        if removed:
            delete_sources(removed, self.store, self.records)
        for key in removed:
            manifest.pop(key, None)
        manifest.update(current)
        if chunks or removed or not (self.path / "bm25").exists():
            self._rebuild_bm25(progress)
        self._write_manifest(manifest)
        return IngestReport(len(files), len(files) - len(changed), len(removed), len(chunks), result,
                            [str(f) for f in changed])

    def _rebuild_bm25(self, progress: Progress | None) -> None:
        from .lexical import BM25Index

        ids = list(self.store.ids())
        docs = self.store.get(ids) if ids else []
        if progress:
            progress("bm25", 0, len(docs))
        target = self.path / "bm25"
        if not docs:
            import shutil

            shutil.rmtree(target, ignore_errors=True)
            return
        BM25Index().build(docs).save(target)
        if progress:
            progress("bm25", len(docs), len(docs))

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        path = self.path / "files.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}  # a torn manifest only costs re-hashing: records still skip unchanged chunks
        return data if isinstance(data, dict) else {}

    def _write_manifest(self, manifest: dict[str, dict[str, Any]]) -> None:
        tmp = self.path / "files.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=0, sort_keys=True))
        os.replace(tmp, self.path / "files.json")

    # ------------------------------------------------------------------ ask
    def retriever(self, k: int = 4) -> Retriever:
        """Hybrid BM25 + dense retrieval with adaptive fusion (dense alone before any BM25 index)."""
        from .lexical import BM25Retriever
        from .retrievers.hybrid import HybridRetriever

        dense = self.store.as_retriever(k=k)
        if not (self.path / "bm25").exists():
            return dense
        return HybridRetriever([dense, BM25Retriever.load(self.path / "bm25", k=k)], k=k)

    def ask(self, question: str, *, k: int = 4, model: Any = None, sentences: int = 3) -> Answer:
        """Answer ``question`` from the top ``k`` passages: with ``model`` (a chat model) an answer
        citing ``[n]``; without, the best ``sentences`` sentences of those passages, cited."""
        if not question.strip():
            raise ValueError("the question is empty")
        if self.store.count() == 0:
            raise LoaderError(f"the knowledge base at {self.path} is empty: run `maru ingest PATH --store {self.path}` first")
        passages = self.retriever(k).invoke(question)
        citations = [Citation(i, str(d.metadata.get("source", "?")), d.text, d.score) for i, d in enumerate(passages, 1)]
        if model is not None:
            return Answer(question, _llm_answer(model, question, citations), citations, "llm")
        return _extractive(question, citations, self.embeddings, sentences)


# ---------------------------------------------------------------------------- answering
_RAG_SYSTEM = (
    "Answer the question using only the numbered passages below. After each claim cite the passage "
    "it comes from as [n]. If the passages do not contain the answer, say so.\n\n{passages}"
)


def _llm_answer(model: Any, question: str, citations: list[Citation]) -> str:
    from ..prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", _RAG_SYSTEM), ("human", "{question}")])
    passages = "\n\n".join(f"[{c.n}] ({c.source})\n{c.text}" for c in citations)
    reply = model.invoke(prompt.format_messages(passages=passages, question=question))
    return str(getattr(reply, "content", reply)).strip()


def _extractive(question: str, citations: list[Citation], embeddings: Embeddings, n: int) -> Answer:
    """The sentences of the passages closest to the question: cosine similarity of embeddings plus
    the share of the question's index terms they contain (which carries languages the embedding
    model does not know), with a small bonus for higher-ranked passages."""
    import numpy as np

    from .lexical import analyze
    from .splitters import split_sentences

    candidates: list[tuple[int, str]] = []
    for c in citations:
        for sentence in split_sentences(_prose(c.text)):
            sentence = " ".join(sentence.split())
            # A chunk may start mid-sentence (overlap): a fragment starts in lower case.
            if 20 <= len(sentence) <= 600 and not sentence[0].islower() and sentence[0] not in ").,;:":
                candidates.append((c.n, sentence))
    if not candidates:
        return Answer(question, "No passage matched the question.", citations, "extractive")
    vectors = embeddings.embed_array([s for _, s in candidates])
    q = np.asarray(embeddings.embed_query(question), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(q) or 1.0)
    cosine = (vectors @ q) / np.where(norms == 0, 1, norms)
    q_terms = set(analyze(question))
    scores = []
    for (rank, sentence), cos in zip(candidates, cosine, strict=True):
        overlap = len(q_terms & set(analyze(sentence))) / len(q_terms) if q_terms else 0.0
        scores.append(float(cos) + 0.5 * overlap + 0.05 / rank)
    best = sorted(range(len(candidates)), key=lambda i: -scores[i])[:n]
    best.sort(key=lambda i: (candidates[i][0], i))  # passage order, then text order
    text = " ".join(f"{candidates[i][1]} [{candidates[i][0]}]" for i in best)
    return Answer(question, text, citations, "extractive")


# ---------------------------------------------------------------------------- helpers
_CODE_BLOCK = re.compile(r"```.*?(```|$)|~~~.*?(~~~|$)", re.DOTALL)
_DROP_LINES = re.compile(r"^\s*(#{1,6}\s.*|\|.*\|)\s*$", re.MULTILINE)
_MARKERS = re.compile(r"^\s*([-*+>]|\d+[.)])\s+", re.MULTILINE)
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _prose(text: str) -> str:
    """Text fit to quote: code blocks, headings and table rows dropped, list markers removed."""
    text = _DROP_LINES.sub("\n", _CODE_BLOCK.sub("\n", text))
    return _LINK.sub(r"\1", _MARKERS.sub("", text)).replace("**", "").replace("`", "")


def _collect(paths: Sequence[str | os.PathLike[str]], glob: str, suffixes: set[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in sorted(path.glob(glob))
                if p.is_file() and p.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            raise LoaderError(f"{raw} does not exist; give a file or a folder to ingest")
    return sorted(set(files))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _counting(chunks: list[Document], progress: Progress | None) -> Iterable[Document]:
    for i, chunk in enumerate(chunks, 1):
        if progress and (i % 64 == 0 or i == len(chunks)):
            progress("embed", i, len(chunks))
        yield chunk
