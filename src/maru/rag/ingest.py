"""What :meth:`KnowledgeBase.ingest <maru.rag.knowledge.KnowledgeBase.ingest>` runs: bring a
knowledge-base folder in step with the files given, and repair the folder on the way.

A folder has four parts that must agree: the vector store (``vectors/``), the record manager
(``records.sqlite``), the file manifest (``files.json``) and the BM25 index (``bm25/``). Every run
first makes them agree, cheaply when they already do (two id lists, one count per source, digests
of the BM25 files), so that a run killed at any point, or any one part lost or damaged, is
repaired by the next run:

1. **Open** the store and the records; a damaged file is moved aside (``*.damaged-<time>``) and
   started afresh, and the report says so.
2. **Store and records**: store entries without a record get one rebuilt from the stored document
   (no embedding); records whose entry is gone are dropped.
3. **Scan**: a file is re-indexed when its content changed (size and mtime, then SHA-256) *or* when
   the records hold another number of chunks for it than the manifest says it produced — so lost
   records or vectors are re-made (only the missing chunks are embedded). Sources in the records
   whose file is gone from the folders given are deleted, whether or not the manifest knew them.
4. **Manifest first**: before indexing, the manifest is written without the files about to be
   indexed, so a kill leaves them to be redone; after, it is written with them.
5. **BM25**: rebuilt from the store when anything changed or when it does not verify.

A file that cannot be loaded is reported (file and why) and left out of the manifest, so the next
run tries it again; its earlier chunks, if any, stay.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IndexingError, LoaderError, VectorStoreError
from .documents import Document

if TYPE_CHECKING:
    from .indexing import IndexResult
    from .knowledge import KnowledgeBase

__all__ = ["IngestReport", "Progress", "ingest"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` — stages: ``scan``, ``embed``, ``bm25``."""

Manifest = dict[str, dict[str, Any]]


@dataclass(slots=True)
class IngestReport:
    """What an ingest did: files seen, left alone and removed; chunks indexed; the files indexed
    (``sources``); the files that could not be loaded, with why (``failed``); and the parts of the
    folder it found lost or damaged and rebuilt (``repaired``)."""

    files_seen: int
    files_unchanged: int
    files_removed: int
    chunks: int
    result: IndexResult | None = None
    sources: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def ingest(kb: KnowledgeBase, paths: Sequence[str | os.PathLike[str]], glob: str, progress: Progress | None) -> IngestReport:
    """Index ``paths`` into ``kb``'s folder (see the module docstring)."""
    from .loaders import DEFAULT_LOADERS

    files = collect(paths, glob, set(DEFAULT_LOADERS))
    roots = [str(Path(p).resolve()) for p in paths]
    repaired = open_parts(kb)
    repaired += agree(kb)
    manifest = read_manifest(kb.path / "files.json", repaired)
    per_source = kb.records.count_by_source()
    current, changed = scan(files, manifest, per_source, progress)
    gone = sorted(
        {s for s in per_source if s is not None and s not in current and _under(s, roots)}
        | {k for k in manifest if k not in current and _under(k, roots)}
    )
    kept = {k: v for k, v in manifest.items() if k not in current and k not in gone}  # other folders' files
    kept.update({k: {**v, "chunks": per_source.get(k, 0)} for k, v in current.items() if k not in changed})
    write_manifest(kb.path / "files.json", kept)  # a kill from here on leaves `changed` to be redone

    chunks, produced, failed = load(kb, changed)
    result = index_chunks(kb, chunks, progress)
    emptied = [f for f, n in produced.items() if n == 0 and per_source.get(f)]
    if gone or emptied:
        from .indexing import delete_sources

        delete_sources(gone + emptied, kb.store, kb.records)
    for key, n in produced.items():
        kept[key] = {**current[key], "chunks": n}
    if chunks or gone or emptied or repaired or not _bm25_intact(kb):
        kb._rebuild_bm25(progress)
        kb._forget_answering()
    write_manifest(kb.path / "files.json", kept)
    indexed = sorted(produced)
    return IngestReport(
        files_seen=len(files), files_unchanged=len(files) - len(changed), files_removed=len(gone),
        chunks=len(chunks), result=result, sources=indexed, failed=failed, repaired=repaired,
    )


# ---------------------------------------------------------------------------- the parts agree
def open_parts(kb: KnowledgeBase) -> list[str]:
    """Open the store and the records; move a damaged one aside and start it afresh."""
    import sqlalchemy as sa

    notes = []
    try:
        kb.store.check()
    except VectorStoreError as exc:
        kb.close()
        notes.append(_set_aside(kb.path / "vectors", exc))
    try:
        kb.records.check()
    except (IndexingError, sa.exc.DBAPIError) as exc:
        kb._drop_records()
        notes.append(_set_aside(kb.path / "records.sqlite", exc))
    return notes


def agree(kb: KnowledgeBase) -> list[str]:
    """Make the store and the records list the same ids: a stored chunk without a record gets
    its record back from the stored document (nothing embedded); a record without a stored chunk
    is dropped, so the scan sees its file short of chunks and re-indexes it."""
    stored, recorded = set(kb.store.ids()), set(kb.records.list_ids())
    notes = []
    orphans = sorted(stored - recorded)
    if orphans:
        docs = kb.store.get(orphans)
        kb.records.upsert([(d.id, _source(d), d.hash()) for d in docs if d.id], kb.records.get_time())
        notes.append(f"{len(orphans)} chunks had no record: records rebuilt from the store")
    missing = sorted(recorded - stored)
    if missing:
        kb.records.delete(missing)
        notes.append(f"{len(missing)} records had no chunk in the store: their files are re-indexed")
    return notes


def _source(doc: Document) -> str | None:
    source = doc.metadata.get("source")
    return None if source is None else str(source)


def _set_aside(path: Path, why: Exception) -> str:
    """Rename a damaged file or folder (and a SQLite file's journals) out of the way."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    return f"{path.name} was damaged ({str(why)[:200]}): moved to {target.name} and rebuilt"


def _bm25_intact(kb: KnowledgeBase) -> bool:
    from .lexical import BM25Index

    count = kb.store.count()
    folder = kb.path / "bm25"
    return not folder.exists() if count == 0 else BM25Index.verify(folder, count)


# ---------------------------------------------------------------------------- files
def scan(
    files: list[Path], manifest: Manifest, per_source: dict[str | None, int], progress: Progress | None
) -> tuple[Manifest, set[str]]:
    """Each file's manifest entry, and which files to index: changed ones, and ones whose records
    do not hold the chunks the manifest says they produced."""
    current: Manifest = {}
    changed: set[str] = set()
    for i, file in enumerate(files, 1):
        key = str(file)
        stat = file.stat()
        old = manifest.get(key)
        if old and old.get("size") == stat.st_size and old.get("mtime") == stat.st_mtime_ns:
            current[key] = old
        else:
            current[key] = {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": _sha256(file)}
        if not old or old.get("sha256") != current[key]["sha256"] or old.get("chunks") != per_source.get(key, 0):
            changed.add(key)
        if progress:
            progress("scan", i, len(files))
    return current, changed


def load(kb: KnowledgeBase, changed: Iterable[str]) -> tuple[list[Document], dict[str, int], list[tuple[str, str]]]:
    """The chunks of the changed files, how many each produced, and the files that failed (why)."""
    from .loaders import loader_for
    from .splitters import RecursiveSplitter

    splitter = RecursiveSplitter(kb.chunk_size, kb.chunk_overlap)
    chunks: list[Document] = []
    produced: dict[str, int] = {}
    failed: list[tuple[str, str]] = []
    for key in sorted(changed):
        try:
            docs = loader_for(key).load()
        except LoaderError as exc:
            failed.append((key, str(exc)))
            continue
        for doc in docs:
            doc.metadata["source"] = key
        pieces = splitter.split_documents(docs, positions=False)  # an edit re-embeds only its chunks
        produced[key] = len(pieces)
        chunks.extend(pieces)
    return chunks, produced, failed


def index_chunks(kb: KnowledgeBase, chunks: list[Document], progress: Progress | None) -> IndexResult | None:
    from .indexing import index

    if not chunks:
        return None
    if progress:
        progress("embed", 0, len(chunks))
    return index(_counting(chunks, progress), kb.store, kb.records, cleanup="incremental", batch_size=256)


def _counting(chunks: list[Document], progress: Progress | None) -> Iterable[Document]:
    for i, chunk in enumerate(chunks, 1):
        if progress and (i % 64 == 0 or i == len(chunks)):
            progress("embed", i, len(chunks))
        yield chunk


def collect(paths: Sequence[str | os.PathLike[str]], glob: str, suffixes: set[str]) -> list[Path]:
    """The files to ingest: files given as such (whatever their suffix, so an unsupported one is
    reported), and the files of folders with a supported suffix, hidden ones left out."""
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


def _under(key: str, roots: list[str]) -> bool:
    return any(key == r or key.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ---------------------------------------------------------------------------- manifest
def read_manifest(path: Path, notes: list[str]) -> Manifest:
    """The manifest, or an empty one when it is missing or damaged (which costs only re-hashing
    and re-splitting: the records still skip unchanged chunks)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} was damaged ({exc}): every file is checked again")
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        notes.append(f"{path.name} was damaged (not a manifest): every file is checked again")
        return {}
    return data


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically (a kill leaves the old one or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=0, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
