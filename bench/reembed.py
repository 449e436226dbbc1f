"""How many chunks an edit re-embeds: maru's ``index()`` next to LangChain's indexing API.

The corpus is a Cranfield subset (read in place from ../shared/data): 120 abstracts made into 10
"files" of 12 paragraphs each, cut by maru's ``RecursiveSplitter`` with the knowledge base's
settings (800 characters, 120 overlap). Both indexers get the very same chunks (text and
``source``), so only the indexing differs. After a first full index, the files are edited:

- file 0: a new paragraph added at the top;
- file 1: a paragraph in the middle rewritten (a sentence added);
- file 2: a paragraph deleted;
- file 3: a paragraph appended at the end;
- files 4–9: unchanged;

and indexed again with ``cleanup="incremental"``. Counted: texts handed to the embedder on the
second run (maru: its ``Embeddings``; LangChain: ``langchain_core.indexing.index`` with an
``InMemoryRecordManager`` and an ``InMemoryVectorStore`` whose embedder counts), next to the
number of chunks whose text is new (no indexer can embed fewer). "maru, with positions" is maru
fed chunks that keep ``start_index``/``end_index``/``chunk_index``: those change for every chunk
after an edit, so every later chunk is rewritten. "LangChain, all in one batch" shows where
LangChain's extra embeddings come from: with its default ``batch_size=100``, incremental cleanup
after a batch deletes the chunks of a file that continue in the next batch, which then re-embeds
them.

    .venv/bin/python bench/reembed.py

Ends with one JSON line of every figure.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval_quality import cranfield  # noqa: E402

from maru.models.embeddings import Embeddings  # noqa: E402
from maru.rag.documents import Document  # noqa: E402
from maru.rag.indexing import index  # noqa: E402
from maru.rag.records import RecordManager  # noqa: E402
from maru.rag.splitters import RecursiveSplitter  # noqa: E402
from maru.rag.stores.memory import InMemoryStore  # noqa: E402

FILES, PARAGRAPHS = 10, 12
CHUNK_SIZE, OVERLAP = 800, 120  # the knowledge base's defaults


class CountingEmbeddings(Embeddings):
    """Vectors from character statistics (what they say does not matter here); counts texts."""

    def __init__(self) -> None:
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return [[float(len(t)), float(sum(map(ord, t[:64])) % 997), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def corpus() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The files before and after the edits: file name -> paragraphs."""
    abstracts = [d.text for d in cranfield().docs if d.text][: FILES * PARAGRAPHS]
    before = {f"cran{i:02d}.txt": abstracts[i * PARAGRAPHS : (i + 1) * PARAGRAPHS] for i in range(FILES)}
    after = {name: list(paragraphs) for name, paragraphs in before.items()}
    after["cran00.txt"].insert(0, "Preface: the studies below were collected for a survey of wing and boundary-layer experiments.")
    after["cran01.txt"][6] += " The results were later confirmed in a second wind-tunnel series."
    del after["cran02.txt"][4]
    after["cran03.txt"].append("Appendix: the measurements of the last study are tabulated in the original report.")
    return before, after


def chunks(files: dict[str, list[str]], *, positions: bool) -> list[Document]:
    splitter = RecursiveSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=OVERLAP)
    docs = [Document("\n\n".join(paragraphs), {"source": name}) for name, paragraphs in files.items()]
    return splitter.split_documents(docs, positions=positions)


def maru_reembedded(before: list[Document], after: list[Document], folder: Path) -> tuple[int, dict[str, int]]:
    emb = CountingEmbeddings()
    store = InMemoryStore(emb)
    with RecordManager(f"sqlite:///{folder / 'records.sqlite'}", namespace="bench") as records:
        index(before, store, records, cleanup="incremental")
        emb.texts = 0
        result = index(after, store, records, cleanup="incremental")
    return emb.texts, result.as_dict()


def langchain_reembedded(
    before: list[Document], after: list[Document], batch_size: int = 100
) -> tuple[int, dict[str, Any]]:
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings as LCEmbeddings
    from langchain_core.indexing import InMemoryRecordManager
    from langchain_core.indexing import index as lc_index
    from langchain_core.vectorstores import InMemoryVectorStore

    counting = CountingEmbeddings()

    class LCCounting(LCEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return counting.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return counting.embed_query(text)

    def lc(docs: list[Document]) -> list[LCDocument]:
        return [LCDocument(page_content=d.text, metadata=dict(d.metadata)) for d in docs]

    store = InMemoryVectorStore(LCCounting())
    records = InMemoryRecordManager(namespace="bench")
    records.create_schema()
    options: dict[str, Any] = {"cleanup": "incremental", "source_id_key": "source", "batch_size": batch_size}
    lc_index(lc(before), records, store, key_encoder="sha256", **options)
    counting.texts = 0
    result = lc_index(lc(after), records, store, key_encoder="sha256", **options)
    return counting.texts, dict(result)


def main() -> None:
    before_files, after_files = corpus()
    before, after = chunks(before_files, positions=False), chunks(after_files, positions=False)
    new_texts = len({(d.metadata["source"], d.text) for d in after} - {(d.metadata["source"], d.text) for d in before})
    with tempfile.TemporaryDirectory() as tmp:
        maru_n, maru_result = maru_reembedded(before, after, Path(tmp) / "plain")
        maru_pos_n, _ = maru_reembedded(
            chunks(before_files, positions=True), chunks(after_files, positions=True), Path(tmp) / "positions"
        )
    lc_n, lc_result = langchain_reembedded(before, after)
    lc_one_batch, _ = langchain_reembedded(before, after, batch_size=len(after) + len(before))
    rows = [
        ("chunks after the edits", len(after)),
        ("chunks whose text is new (the floor)", new_texts),
        ("maru index()", maru_n),
        ("LangChain index()", lc_n),
        ("LangChain index(), all in one batch", lc_one_batch),
        ("maru, with positions in metadata", maru_pos_n),
    ]
    print(f"Cranfield subset: {FILES} files x {PARAGRAPHS} abstracts, {len(before)} chunks; 4 files edited")
    for label, value in rows:
        print(f"  {label:<40} {value:>5}")
    print(f"  maru result: {maru_result}")
    print(f"  LangChain result: {lc_result}")
    print(json.dumps({
        "chunks_before": len(before), "chunks_after": len(after), "new_texts": new_texts,
        "maru_reembedded": maru_n, "langchain_reembedded": lc_n,
        "langchain_one_batch_reembedded": lc_one_batch, "maru_with_positions_reembedded": maru_pos_n,
        "maru_result": maru_result, "langchain_result": lc_result,
    }))


if __name__ == "__main__":
    main()
