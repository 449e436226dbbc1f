"""``KnowledgeBase``: the folder ``maru ingest`` builds and ``maru ask`` answers from.

One folder holds everything, so it can be copied or deleted as a unit:

- ``vectors/``: the embedded default vector store (:class:`~maru.rag.stores.local.LocalStore`);
- ``records.sqlite``: the record manager (stable chunk ids and content hashes);
- ``files.json``: size, mtime and SHA-256 of every ingested file, so a re-run does not even read
  unchanged files, and removed files have their chunks deleted;
- ``bm25/``: the lexical index, rebuilt from the store whenever something changed.

Every ingest first makes these four agree and repairs a lost or damaged one
(:mod:`maru.rag.ingest`), so a killed run or a damaged file is fixed by the next ``maru ingest``.

Answers: hybrid retrieval (BM25 + dense, adaptively fused), then either a configured chat model
writes an answer citing the passages as ``[n]``, or — offline — the best sentences of the top
passages are picked by embedding similarity and word overlap with the question, each cited.

The knowledge base is a runnable (question in, answer text out), so answering is one composition
of maru's own steps — question → {question, citations} → + answer — built once per settings: it
streams the answer's tokens, batches, runs async, traces as one tree, pipes with ``|`` and serves
with ``maru serve module:kb``. The retriever and the loaded BM25 index are kept between questions
and dropped when the index changes (an ingest here, or a saved BM25 index from another process).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._home import maru_home
from ..core import compose
from ..core.config import RunConfig
from ..core.runnable import Runnable, runnable
from ..errors import IndexingError, LoaderError
from .documents import Document
from .ingest import IngestReport, Progress
from .relevance import NOT_FOUND, ensure_cited, relevance

if TYPE_CHECKING:
    from ..eval import ExperimentResult
    from ..models.embeddings import Embeddings
    from .evaluation import KnowledgeBasePipeline
    from .lexical import BM25Index
    from .retrievers.base import Retriever
    from .stores.local import LocalStore

__all__ = ["Answer", "Citation", "IngestReport", "KnowledgeBase"]

@dataclass(slots=True)
class Citation:
    n: int
    source: str
    text: str
    score: float | None = None


@dataclass(slots=True)
class Answer:
    """An answer with the passages it cites; ``mode`` is ``"llm"``, ``"extractive"`` or
    ``"not_found"`` (no passage was relevant enough; the citations are the closest ones)."""

    question: str
    text: str
    citations: list[Citation]
    mode: str

    def __str__(self) -> str:
        return self.text


MIN_RELEVANCE = 0.4
"""Calibrated on XQuAD and KorQuAD questions against their own and an unrelated corpus
(``bench/rag_relevance.py``)."""
_MAX_CHAINS = 16
"""Compositions kept per knowledge base (one per setting of k, sentences and model asked for)."""
_UNSEEN = (-1, -1)
"""The index mark before the index was looked at (``None`` means: there is no BM25 index)."""


class KnowledgeBase(Runnable[Any, str]):
    """Ingest files into a folder and answer questions from it.

    As a runnable it takes a question (or ``{"question": ...}``) and returns the answer's text,
    written by ``model`` (a chat model) when one is given, else quoted (``sentences`` sentences)
    from the top ``k`` passages; the three can also be given per call. :meth:`ask` returns the same
    answer with its citations. When no passage is relevant enough (``min_relevance``) the answer
    is "Not found in these documents." rather than an answer made up from unrelated text.

    ``path`` ``None``: ``kb`` in maru's home (:mod:`maru._home`), the folder ``maru ingest`` and
    ``maru ask`` use, so Python and the CLI share one knowledge base."""

    io_bound = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        embeddings: Embeddings | None = None,
        chunk_size: int = 800,
        chunk_overlap: int = 120,
        model: Any = None,
        k: int = 4,
        sentences: int = 3,
        min_relevance: float = MIN_RELEVANCE,
    ) -> None:
        self.path = Path(path) if path is not None else maru_home() / "kb"
        self.path.mkdir(parents=True, exist_ok=True)
        self._embeddings = embeddings
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.model, self.k, self.sentences = model, k, sentences
        self.min_relevance = min_relevance
        """Below this :func:`~maru.rag.relevance.relevance` of the best passage the answer is
        "Not found in these documents." and no model is asked (0 turns the check off)."""
        self._store: LocalStore | None = None
        self._records: Any = None
        # What answering builds once and keeps until the index changes (guarded by _lock).
        self._lock = threading.Lock()
        self._index_mark: tuple[int, int] | None = _UNSEEN
        self._bm25: BM25Index | None = None
        self._retrievers: dict[int, Retriever] = {}
        self._chains: dict[tuple[int, int, int], tuple[Any, Runnable[Any, dict[str, Any]]]] = {}

    def __repr__(self) -> str:
        return f"KnowledgeBase({str(self.path)!r})"

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
        self._forget_answering()
        if self._store is not None:
            self._store.close()
            self._store = None
        self._drop_records()

    def _drop_records(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None

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
        given folders. Files that cannot be loaded are listed in the report's ``failed``; lost or
        damaged parts of the folder are rebuilt and listed in ``repaired``
        (:func:`maru.rag.ingest.ingest`)."""
        from .ingest import ingest

        return ingest(self, paths, glob, progress)

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

    # ------------------------------------------------------------------ ask
    def retriever(self, k: int = 4) -> Retriever:
        """Hybrid BM25 + dense retrieval with adaptive fusion (dense alone before any BM25 index).
        Built once per ``k`` (the BM25 index read from disk once) and rebuilt after the index
        changed; a retriever taken from here keeps answering from the index it was built on."""
        with self._lock:
            self._follow_index()
            return self._retriever(k)

    def ask(self, question: str, *, k: int = 4, model: Any = None, sentences: int = 3) -> Answer:
        """Answer ``question`` from the top ``k`` passages: with ``model`` (a chat model; default
        the knowledge base's own) an answer citing ``[n]``; without, the best ``sentences``
        sentences of those passages, cited."""
        model = self.model if model is None else model
        result = self._answering(k, sentences, model=model).invoke(question)
        text = result["answer"].strip()
        mode = "not_found" if text == NOT_FOUND else "extractive" if model is None else "llm"
        return Answer(question, text, result["citations"], mode)

    # ------------------------------------------------------------------ evaluate what is served
    def evaluation_pipeline(self, *, k: int | None = None, sentences: int | None = None, model: Any = None) -> KnowledgeBasePipeline:
        """This knowledge base as :mod:`maru.eval` runs it: :meth:`ask` with the settings it serves
        with (``k``, ``sentences``, ``model``: the knowledge base's own where not given)."""
        from .evaluation import KnowledgeBasePipeline

        return KnowledgeBasePipeline(
            self, k=self.k if k is None else k, sentences=self.sentences if sentences is None else sentences,
            model=self.model if model is None else model,
        )

    def evaluate(
        self, dataset: Any, *, k: int | None = None, sentences: int | None = None, model: Any = None, **options: Any
    ) -> ExperimentResult:
        """Score the answering this knowledge base serves on ``dataset`` and store the experiment
        (:func:`maru.eval.evaluate`; ``options``: ``name``, ``judge``, ``store``, ``restart``,
        ``progress``)."""
        from ..eval import evaluate

        return evaluate(dataset, self.evaluation_pipeline(k=k, sentences=sentences, model=model), **options)

    # ------------------------------------------------------------------ as a runnable
    # The hooks run the answering composition's own hooks, so its steps are this run's children.
    # Call-time keyword arguments (``k``, ``sentences``, ``model``) override the settings.
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> str:
        answer: str = self._answering(**kwargs)._invoke(input, config)["answer"]
        return answer

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> str:
        answer: str = (await self._answering(**kwargs)._ainvoke(input, config))["answer"]
        return answer

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[str]:
        for chunk in self._answering(**kwargs)._stream(input, config):
            if "answer" in chunk:
                yield chunk["answer"]

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[str]:
        async for chunk in self._answering(**kwargs)._astream(input, config):
            if "answer" in chunk:
                yield chunk["answer"]

    # ------------------------------------------------------------------ answering, built once
    def _answering(
        self, k: int | None = None, sentences: int | None = None, *, model: Any = None
    ) -> Runnable[Any, dict[str, Any]]:
        """The composition that answers with these settings (the knowledge base's own where not
        given), from a question to ``{question, citations, answer}``: built on first use, then
        reused until the index changes."""
        k = self.k if k is None else k
        sentences = self.sentences if sentences is None else sentences
        model = self.model if model is None else model
        key = (k, sentences, id(model))
        with self._lock:
            self._follow_index()
            kept = self._chains.get(key)
            if kept is None or kept[0] is not model:  # an id can be reused once its model is gone
                if len(self._chains) >= _MAX_CHAINS:
                    del self._chains[next(iter(self._chains))]
                kept = self._chains[key] = (model, self._compose(self._retriever(k), self._writer(model, sentences)))
            return kept[1]

    def _compose(self, retriever: Retriever, writer: Runnable[Any, str]) -> Runnable[Any, dict[str, Any]]:
        """question → {question, citations} → {question, citations, answer}."""
        retrieve = compose.Sequence(retriever, runnable(_cite, name="cite"), name="retrieve")
        return compose.Sequence(
            runnable(self._question, name="question"),
            compose.parallel(question=compose.passthrough(), citations=retrieve),
            compose.assign(answer=writer),
            name="KnowledgeBase",
        )

    def _writer(self, model: Any, sentences: int) -> Runnable[Any, str]:
        """The step that writes the answer from ``{question, citations}``: the model prompted with
        the numbered passages, or — without a model — the best sentences of the passages, quoted;
        either one only when the passages are relevant (:class:`_Grounded`)."""
        if model is None:
            embeddings = self.embeddings

            def extract(inputs: dict[str, Any]) -> str:
                return _extract(inputs["question"], inputs["citations"], embeddings, sentences)

            return _Grounded(runnable(extract, io_bound=True), embeddings, self.min_relevance)
        from ..parsers import StrOutputParser
        from ..prompts import ChatPromptTemplate

        prompt = ChatPromptTemplate.from_messages([("system", _RAG_SYSTEM), ("human", "{question}")])
        values = compose.parallel(passages=runnable(_numbered, name="passages"), question=compose.pick("question"))
        write = compose.Sequence(values, prompt, model, StrOutputParser(), name="write")
        return _Grounded(write, self.embeddings, self.min_relevance)

    def _question(self, input: Any) -> str:
        """The question of ``input`` (a string or ``{"question": ...}``), refused when it is empty
        or when there is nothing to answer from."""
        question = input.get("question") if isinstance(input, Mapping) else input
        if not isinstance(question, str):
            raise TypeError(
                f"KnowledgeBase takes a question string or {{'question': ...}}, got {type(input).__name__}: {input!r:.80}"
            )
        if not question.strip():
            raise ValueError("the question is empty")
        if self.store.count() == 0:
            raise LoaderError(f"the knowledge base at {self.path} is empty: run `maru ingest PATH --store {self.path}` first")
        return question

    # ------------------------------------------------------------------ kept between questions
    def _follow_index(self) -> None:
        """Drop what was built on an older index (lock held). A saved BM25 index marks every
        (re-)index, by this process or another; the vector store follows writes on its own."""
        from .lexical import BM25Index

        mark = BM25Index.saved_mark(self.path / "bm25")
        if mark != self._index_mark:
            self._forget()
            self._index_mark = mark

    def _retriever(self, k: int) -> Retriever:
        """The retriever for ``k``, built on first use (lock held)."""
        if k not in self._retrievers:
            self._retrievers[k] = self._build_retriever(k)
        return self._retrievers[k]

    def _build_retriever(self, k: int) -> Retriever:
        from .lexical import BM25Index, BM25Retriever
        from .retrievers.hybrid import HybridRetriever

        dense = self.store.as_retriever(k=k)
        if self._index_mark is None:  # no BM25 index saved yet
            return dense
        if self._bm25 is None:
            folder = self.path / "bm25"
            if not BM25Index.verify(folder):
                raise IndexingError(
                    f"the BM25 index in {folder} is damaged or incomplete; run `maru ingest PATH --store "
                    f"{self.path}` with the same files to rebuild it"
                )
            self._bm25 = BM25Index.load(folder)
        return HybridRetriever([dense, BM25Retriever(self._bm25, k=k)], k=k)

    def _forget(self) -> None:
        """Drop the retrievers, the loaded BM25 index and the compositions (lock held)."""
        self._index_mark = _UNSEEN
        self._bm25 = None
        self._retrievers.clear()
        self._chains.clear()

    def _forget_answering(self) -> None:
        """Drop what answering kept: this object re-indexed, or closed the store it was built on."""
        with self._lock:
            self._forget()


# ---------------------------------------------------------------------------- answering
class _Grounded(Runnable[dict[str, Any], str]):
    """Writes the answer with ``write`` only when the best passage is relevant enough, else says
    it is not found; an answer that cites no passage gets the marker of the one it used most."""

    io_bound = True

    def __init__(self, write: Runnable[Any, str], embeddings: Embeddings, min_relevance: float) -> None:
        self.write, self.embeddings, self.min_relevance = write, embeddings, min_relevance
        self._name = "grounded"

    def _invoke(self, input: dict[str, Any], config: RunConfig | None = None, **kwargs: Any) -> str:
        return "".join(self._stream(input, config))

    def _stream(self, input: dict[str, Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[str]:
        texts = [c.text for c in input["citations"]]
        if not self._relevant(input["question"], texts):
            yield NOT_FOUND
            return
        pieces: list[str] = []
        for piece in self.write.stream(input, config):
            pieces.append(piece)
            yield piece
        answer = "".join(pieces)
        cited = ensure_cited(answer, texts)
        if cited != answer:
            yield cited[len(answer.rstrip()):]

    def _relevant(self, question: str, texts: list[str]) -> bool:
        if self.min_relevance <= 0 or not texts:
            return bool(texts)
        return max(relevance(question, texts, self.embeddings)) >= self.min_relevance


_RAG_SYSTEM = (
    "Answer the question using only the numbered passages below. After each claim cite the passage "
    "it comes from as [n]. If the passages do not contain the answer, say so.\n\n{passages}"
)


def _cite(passages: list[Document]) -> list[Citation]:
    return [Citation(i, str(d.metadata.get("source", "?")), d.text, d.score) for i, d in enumerate(passages, 1)]


def _numbered(inputs: dict[str, Any]) -> str:
    """The passages as the model sees them: ``[n] (source)`` then the text."""
    return "\n\n".join(f"[{c.n}] ({c.source})\n{c.text}" for c in inputs["citations"])


def _extract(question: str, citations: list[Citation], embeddings: Embeddings, n: int) -> str:
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
        return "No passage matched the question."
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
    return " ".join(f"{candidates[i][1]} [{candidates[i][0]}]" for i in best)


# ---------------------------------------------------------------------------- helpers
_CODE_BLOCK = re.compile(r"```.*?(```|$)|~~~.*?(~~~|$)", re.DOTALL)
_DROP_LINES = re.compile(r"^\s*(#{1,6}\s.*|\|.*\|)\s*$", re.MULTILINE)
_MARKERS = re.compile(r"^\s*([-*+>]|\d+[.)])\s+", re.MULTILINE)
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _prose(text: str) -> str:
    """Text fit to quote: code blocks, headings and table rows dropped, list markers removed."""
    text = _DROP_LINES.sub("\n", _CODE_BLOCK.sub("\n", text))
    return _LINK.sub(r"\1", _MARKERS.sub("", text)).replace("**", "").replace("`", "")
