"""``index``: keep a vector store in step with a corpus — embed only what is new or changed, delete
what vanished — with a :class:`~maru.rag.records.RecordManager` remembering what was written.

A run reads documents in batches. Per batch it hashes every document, asks the record manager for
the stored hashes of the whole batch in one query, writes the new and changed documents to the store
(the only step that embeds), then records the whole batch stamped with the run's time — unchanged
documents too, so cleanup can tell "still in the corpus" from "gone". Re-indexing an unchanged corpus
therefore costs hashing plus two statements per batch, and never calls the embedder.

**Cleanup** deletes records (and their documents) the run did not touch:

- ``None``: nothing is deleted.
- ``"incremental"``: for each source seen in the run, its untouched documents, as soon as the source
  is finished (a batch arrives without it), so a long run frees space as it goes.
- ``"scoped"``: the same set, but only at the end, so readers keep seeing the old version of a source
  until the new one is complete.
- ``"full"``: everything in the namespace the run did not touch, at the end — the run must be the
  whole corpus. It first runs :func:`reconcile`, which deletes store entries no record (of any
  namespace in the same record database) knows: the store must hold only indexed documents.

A source that produced no document at all is never seen, so only ``"full"`` or
:func:`delete_sources` removes it.

**Crash safety.** Every write goes to the store before the record manager, and every delete leaves
the record until the store has dropped the document, so a process killed at any instant leaves at
worst (a) a store entry without a record, which a rerun overwrites under the same stable id (or
:func:`reconcile` removes), or (b) a record marked invalid whose document may be gone, which a rerun
rewrites if the corpus still has it and deletes if not. Rerunning to completion converges to
"store ids == record ids", without duplicates or orphans. Concurrent runs on one namespace are not
supported.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import IndexingError
from .documents import Document, as_documents, content_hash
from .records import CHUNK, chunks

if TYPE_CHECKING:
    from .docstore import DocStore
    from .records import RecordManager
    from .stores.base import VectorStore

__all__ = ["Cleanup", "IndexResult", "aindex", "delete_sources", "index", "reconcile"]

Cleanup = Literal["incremental", "full", "scoped"]
KeyFn = str | Callable[[Document], Any]


@dataclass
class IndexResult:
    """What a run did, in records: written for the first time, rewritten because their content
    changed, left alone, deleted. Also readable as ``result["num_added"]`` (LangChain's keys) or
    ``result["added"]``."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0

    def __getitem__(self, key: str) -> int:
        name = key.removeprefix("num_")
        if name not in ("added", "updated", "skipped", "deleted"):
            raise KeyError(key)
        return int(getattr(self, name))

    def keys(self) -> list[str]:
        return ["num_added", "num_updated", "num_skipped", "num_deleted"]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ---------------------------------------------------------------------------- shared machinery
# (also used by maru.rag.parent_child)


@dataclass(slots=True)
class Item:
    """One record-to-be: its id, the source it is scoped to, its content hash and what to write."""

    id: str
    source: str | None
    hash: str
    doc: Document
    parent: bool = False  # parent-child indexing: goes to the docstore, not the vector store


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def source_of(doc: Document, key: KeyFn, cleanup: Cleanup | None) -> str | None:
    """The document's source id (``str``), or ``None``; an error when the cleanup mode needs one."""
    value = key(doc) if callable(key) else doc.metadata.get(key)
    if value is None and cleanup in ("incremental", "scoped"):
        where = "source_id_key returned None" if callable(key) else f"metadata has no {key!r}"
        raise IndexingError(
            f"cleanup={cleanup!r} needs a source id for every document, but {where} for the "
            f"document starting {doc.text[:40]!r}; set doc.metadata[{key!r}] (loaders set "
            "'source'), pass source_id_key= naming the field or a function, or use cleanup='full' "
            "or None"
        )
    return None if value is None else str(value)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


class IdMaker:
    """Stable document ids for one run.

    In order of precedence: ``metadata[id_key]`` (or ``id_key(doc)``) when ``id_key`` is given; the
    user's ``doc.id``; for a document with a source, a hash of (namespace, source, hash of the
    text, how many documents of that source in this run had the same text before it); without a
    source, a hash of (namespace, content hash).

    Why content and not position: a paragraph added at the top of a file shifts the position of
    every later chunk, so positional ids would give each of them another chunk's text and re-embed
    them all; with content ids only the chunks whose text changed are new. An edited chunk gets a
    new id, so the old version goes with the run's cleanup (``cleanup=None`` keeps it, as
    LangChain's indexing does). The occurrence number keeps a text repeated within a source (a
    boilerplate paragraph) as many times as it appears. Sourceless documents are identified by
    text and metadata (identical documents collapse into one). The namespace is part of the hash
    so two namespaces can share a store.

    ``by_position``: sourced documents are numbered by position in their source instead (their
    text left out), so an edited document keeps its id and is replaced in place — what
    parent-child indexing wants for parents, whose children hang off the parent's id."""

    def __init__(self, namespace: str, id_key: KeyFn | None = None, *, by_position: bool = False) -> None:
        self.namespace = namespace
        self.id_key = id_key
        self.by_position = by_position
        self._occurrences: dict[tuple[str, str], int] = {}

    def __call__(self, doc: Document, source: str | None, digest: str) -> str:
        if self.id_key is not None:
            value = self.id_key(doc) if callable(self.id_key) else doc.metadata.get(self.id_key)
            if value is None or value == "":
                raise IndexingError(
                    f"id_key={self.id_key!r} gave no id for the document starting "
                    f"{doc.text[:40]!r}; give every document that metadata field, or drop id_key"
                )
            return str(value)
        if doc.id:
            return doc.id
        if source is None:
            return _digest(self.namespace, "", digest)
        text = "" if self.by_position else content_hash(doc.text)
        n = self._occurrences.get((source, text), 0)
        self._occurrences[source, text] = n + 1
        return _digest(self.namespace, source, text, str(n))


class IndexRun:
    """The bookkeeping of one run: classify and write batches, then delete what it did not touch.

    ``remove(ids)`` deletes documents from the backends. ``cascade``: deleting a record also deletes
    the records whose source id is its id (parent-child: a parent's children), children first."""

    def __init__(
        self,
        records: RecordManager,
        *,
        remove: Callable[[list[str]], object],
        cleanup: Cleanup | None,
        cleanup_batch_size: int = 1000,
        force_update: bool = False,
        cascade: bool = False,
    ) -> None:
        if cleanup not in (None, "incremental", "full", "scoped"):
            raise ValueError(
                f"cleanup must be None, 'incremental', 'full' or 'scoped', got {cleanup!r}"
            )
        if cleanup_batch_size <= 0:
            raise ValueError(f"cleanup_batch_size must be positive, got {cleanup_batch_size}")
        self.records = records
        self.remove = remove
        self.cleanup = cleanup
        self.cleanup_batch_size = cleanup_batch_size
        self.force_update = force_update
        self.cascade = cascade
        self.time = records.get_time()
        self.result = IndexResult()
        self._open: set[str | None] = set()  # incremental: sources of the previous batch
        self._seen: set[str | None] = set()  # scoped: every source of the run

    def write_batch(self, items: list[Item], write: Callable[[list[Item]], object]) -> None:
        """Write the new and changed items with ``write`` (store first), then record all of them."""
        unique = list({it.id: it for it in items}.values())  # a repeated id: the last one wins
        known = self.records.existing_with_times([it.id for it in unique])
        todo: list[Item] = []
        for it in unique:
            old = known.get(it.id)
            if old is None:
                todo.append(it)
                self.result.added += 1
            elif old[1] >= self.time:  # already written earlier in this run: the later one wins
                if old[0] != it.hash:
                    todo.append(it)
            elif old[0] != it.hash or self.force_update:
                todo.append(it)
                self.result.updated += 1
            else:
                self.result.skipped += 1
        if todo:
            write(todo)
        self.records.upsert([(it.id, it.source, it.hash) for it in unique], self.time)

    def batch_done(self, sources: set[str | None]) -> None:
        """Incremental cleanup of the sources the last batches finished."""
        if self.cleanup == "incremental":
            finished = self._open - sources
            if finished:
                self.delete_untouched(list(finished))
            self._open = set(sources)
        elif self.cleanup == "scoped":
            self._seen |= sources

    def finish(self) -> IndexResult:
        if self.cleanup == "incremental":
            self.delete_untouched(list(self._open))
        elif self.cleanup == "scoped":
            self.delete_untouched(list(self._seen))
        elif self.cleanup == "full":
            self.delete_untouched(None)
        return self.result

    def delete_untouched(self, sources: Sequence[str | None] | None, *, all_times: bool = False) -> None:
        """Delete the records (and documents) of these sources (all when ``None``) that this run
        did not write, ``cleanup_batch_size`` at a time."""
        before = None if all_times else self.time
        for part in [None] if sources is None else chunks(sources, CHUNK):
            done: set[str] = set()
            while True:
                ids = self.records.list_ids(
                    before=before,
                    source_ids=None if part is None else list(part),
                    limit=self.cleanup_batch_size,
                )
                if not ids:
                    break
                if done.intersection(ids):
                    raise IndexingError(
                        f"record manager {self.records!r} still lists ids it just deleted; "
                        "is another process writing to this namespace?"
                    )
                done.update(ids)
                self.delete(ids)

    def delete(self, ids: list[str]) -> None:
        """Delete documents and their records: mark the records invalid, delete children (when
        cascading), delete from the backends, then delete the records."""
        self.records.invalidate(ids)
        if self.cascade:
            while children := self.records.list_ids(source_ids=ids, limit=self.cleanup_batch_size):
                self.records.invalidate(children)
                self.remove(children)
                self.result.deleted += self.records.delete(children)
        self.remove(ids)
        self.result.deleted += self.records.delete(ids)


def check_batch_size(batch_size: int) -> None:
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


# ---------------------------------------------------------------------------- public API


def index(
    docs: Iterable[Document],
    store: VectorStore,
    records: RecordManager,
    *,
    cleanup: Cleanup | None = None,
    source_id_key: KeyFn = "source",
    batch_size: int = 100,
    id_key: KeyFn | None = None,
    cleanup_batch_size: int = 1000,
    force_update: bool = False,
) -> IndexResult:
    """Bring ``store`` in step with ``docs``: add new documents, re-write changed ones, skip
    unchanged ones (no embedding), and delete what ``cleanup`` says (see the module docstring).

    Ids: ``metadata[id_key]`` if ``id_key`` is given, else ``doc.id`` if set, else a stable id from
    (source, text, occurrence of that text in the source) — so an edit re-embeds only the chunks
    whose text changed, and the old versions go with ``cleanup`` — or, for documents without a
    source, from their content (see :class:`IdMaker`). ``source_id_key`` is the metadata field holding the source (or a function of
    the document). A document is unchanged when its SHA-256 of text and metadata matches the
    record; ``force_update`` rewrites (re-embeds) everything anyway. Repeated ids: the last wins.
    """
    check_batch_size(batch_size)
    run = IndexRun(
        records,
        remove=store.delete,
        cleanup=cleanup,
        cleanup_batch_size=cleanup_batch_size,
        force_update=force_update,
    )
    if cleanup == "full":
        reconcile_if_possible(store, records, None, cleanup_batch_size, strict=False)
    make_id = IdMaker(records.namespace, id_key)

    def write(todo: list[Item]) -> None:
        store.upsert([it.doc for it in todo])

    for batch in batched(as_documents(docs), batch_size):
        items = []
        for doc in batch:
            source = source_of(doc, source_id_key, cleanup)
            digest = doc.hash()
            rid = make_id(doc, source, digest)
            items.append(Item(rid, source, digest, Document(doc.text, doc.metadata, rid)))
        run.write_batch(items, write)
        run.batch_done({it.source for it in items})
    return run.finish()


async def aindex(
    docs: Iterable[Document], store: VectorStore, records: RecordManager, **kwargs: Any
) -> IndexResult:
    """:func:`index` on the shared thread pool (same arguments), for async applications."""
    from ..core.executor import run_in_thread

    return await run_in_thread(functools.partial(index, docs, store, records, **kwargs))


def delete_sources(
    source_ids: Sequence[str],
    store: VectorStore,
    records: RecordManager,
    *,
    docstore: DocStore | None = None,
    cleanup_batch_size: int = 1000,
) -> IndexResult:
    """Delete every document recorded for these sources (a file that was removed, which
    ``cleanup="incremental"`` cannot notice because it yields no document). For a parent-child
    index give its ``docstore``: the sources' parents go from there, their children from ``store``
    (without it, such sources are refused before anything is deleted)."""
    sources = [str(s) for s in source_ids]
    if docstore is None and _has_children(records, sources):
        raise IndexingError(
            "these sources were indexed parent-child (their records have children), so their "
            "parents live in a docstore: call delete_sources(..., docstore=...) with the docstore "
            "given to index_parent_child"
        )
    run = IndexRun(
        records,
        remove=remover(store, docstore),
        cleanup=None,
        cleanup_batch_size=cleanup_batch_size,
        cascade=True,
    )
    run.delete_untouched(sources, all_times=True)
    return run.result


def remover(store: VectorStore, docstore: DocStore | None) -> Callable[[list[str]], object]:
    """Deletes ids from the store and, for parent-child indexes, the docstore (children live in
    the store, parents in the docstore; deleting an absent id is harmless in both)."""
    if docstore is None:
        return store.delete

    def remove(ids: list[str]) -> None:
        store.delete(ids)
        docstore.mdelete(ids)

    return remove


def _has_children(records: RecordManager, sources: list[str]) -> bool:
    """Whether any record of these sources is the parent (source id) of other records."""
    for part in chunks(sources, CHUNK):
        parents = records.list_ids(source_ids=list(part))
        for ids in chunks(parents, CHUNK):
            if records.list_ids(source_ids=list(ids), limit=1):
                return True
    return False


def reconcile(
    store: VectorStore,
    records: RecordManager,
    *,
    docstore: DocStore | None = None,
    batch_size: int = 1000,
) -> int:
    """Repair what crashes or outside edits left: delete store (and docstore) entries that have no
    record in any namespace of ``records``' database, and mark invalid the records of this
    namespace whose document is in neither, so the next run rewrites or deletes them. Returns how
    many store/docstore entries were deleted.

    Only for a store that holds nothing but documents indexed through this record database (it
    deletes everything else). Needs ``store.ids()``. Run by ``index(..., cleanup="full")``."""
    return reconcile_if_possible(store, records, docstore, batch_size, strict=True)


def reconcile_if_possible(
    store: VectorStore,
    records: RecordManager,
    docstore: DocStore | None,
    batch_size: int,
    *,
    strict: bool = False,
) -> int:
    """:func:`reconcile`; when the store cannot list its ids, skip (``strict=False``) or raise."""
    try:
        present = set(store.ids())
    except NotImplementedError as exc:
        if strict:
            raise IndexingError(
                f"{type(store).__name__} cannot list its ids, so orphaned entries cannot be found; "
                "use a store that implements ids()"
            ) from exc
        return 0
    backends: list[tuple[set[str], Callable[[list[str]], object]]] = [(present, store.delete)]
    if docstore is not None:
        backends.append((set(docstore.keys()), docstore.mdelete))
    removed = 0
    for held, remove in backends:
        held_list = sorted(held)
        orphans: list[str] = []
        for part in chunks(held_list, CHUNK):
            known = records.known(part, any_namespace=True)
            orphans.extend(i for i in part if i not in known)
        for part in chunks(orphans, batch_size):
            remove(list(part))
        removed += len(orphans)
    everywhere = set().union(*(held for held, _ in backends))
    missing = [i for i in records.list_ids() if i not in everywhere]
    if missing:
        records.invalidate(missing)
    return removed
