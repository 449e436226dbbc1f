"""``index_parent_child``: index small chunks for search and keep the larger passages they came
from for answering — children in the vector store, parents in a :class:`~maru.rag.docstore.DocStore`
— through one record manager, with the guarantees of :func:`~maru.rag.indexing.index`.

Records form a two-level tree in one namespace: a parent's record is scoped to its document's
source; each child's record is scoped to its parent (source id = the parent's id). So:

- an unchanged parent and its unchanged children are skipped (nothing embedded);
- a changed parent is rewritten and its children replaced in place (``<parent_id>:<n>``); children
  beyond the new count are deleted at once, whatever the cleanup mode;
- a parent that cleanup deletes takes its children with it (children first, so a crash in between
  leaves the parent's record behind for the rerun to finish the job);
- ``delete_sources(sources, store, records, docstore=docstore)`` removes a source's parents and
  their children the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .documents import Document, as_documents
from .indexing import (
    Cleanup,
    IdMaker,
    IndexResult,
    IndexRun,
    Item,
    KeyFn,
    batched,
    check_batch_size,
    reconcile_if_possible,
    remover,
    source_of,
)

if TYPE_CHECKING:
    from .docstore import DocStore
    from .records import RecordManager
    from .stores.base import VectorStore

__all__ = ["Splitter", "index_parent_child"]


class Splitter(Protocol):
    """Anything that cuts documents into smaller ones (``maru.rag.splitters`` or LangChain's)."""

    def split_documents(self, documents: list[Document]) -> list[Document]: ...


def index_parent_child(
    docs: Iterable[Document],
    *,
    child_splitter: Splitter,
    store: VectorStore,
    docstore: DocStore,
    records: RecordManager,
    parent_splitter: Splitter | None = None,
    cleanup: Cleanup | None = None,
    source_id_key: KeyFn = "source",
    parent_id_key: str = "parent_id",
    batch_size: int = 100,
    cleanup_batch_size: int = 1000,
    force_update: bool = False,
) -> IndexResult:
    """Index ``docs`` as parents (each document, or each ``parent_splitter`` chunk of it) in
    ``docstore`` and their ``child_splitter`` chunks in ``store``, each child carrying
    ``metadata[parent_id_key]`` — what :class:`~maru.rag.retrievers.parent_child.ParentChildRetriever`
    reads.

    Parent ids: ``doc.id`` if set (``"<doc.id>:<k>"`` for its k-th parent chunk), else a stable id
    from (source, position) (:class:`~maru.rag.indexing.IdMaker` ``by_position``). Child ids:
    ``"<parent_id>:<n>"``. ``batch_size`` counts input documents. The counts in the result are
    records: parents and children both count."""
    check_batch_size(batch_size)
    run = IndexRun(
        records,
        remove=remover(store, docstore),
        cleanup=cleanup,
        cleanup_batch_size=cleanup_batch_size,
        force_update=force_update,
        cascade=True,
    )
    if cleanup == "full":
        reconcile_if_possible(store, records, docstore, cleanup_batch_size, strict=False)
    make_id = IdMaker(records.namespace, by_position=True)  # an edited parent is replaced in place

    def write(todo: list[Item]) -> None:
        children = [it.doc for it in todo if not it.parent]
        parents = [it.doc for it in todo if it.parent]
        if children:
            store.upsert(children)
        if parents:
            docstore.mset(parents)

    for batch in batched(as_documents(docs), batch_size):
        parents: list[Item] = []
        children: list[Item] = []
        for doc in batch:
            source = source_of(doc, source_id_key, cleanup)
            for parent in _parents(doc, source, parent_splitter, make_id):
                parents.append(parent)
                children.extend(_children(parent, child_splitter, parent_id_key))
        run.write_batch(children + parents, write)
        # Children a changed parent no longer has (or a crash left behind): not touched this run.
        run.delete_untouched([p.id for p in parents])
        run.batch_done({p.source for p in parents})
    return run.finish()


def _parents(
    doc: Document, source: str | None, splitter: Splitter | None, make_id: IdMaker
) -> list[Item]:
    if splitter is None:
        pieces = [doc]
    else:
        pieces = [Document(p.text, dict(p.metadata)) for p in as_documents(splitter.split_documents([doc]))]
    out = []
    for k, piece in enumerate(pieces):
        digest = piece.hash()
        pid = f"{doc.id}:{k}" if splitter is not None and doc.id else make_id(piece, source, digest)
        out.append(Item(pid, source, digest, Document(piece.text, dict(piece.metadata), pid), True))
    return out


def _children(parent: Item, splitter: Splitter, parent_id_key: str) -> Sequence[Item]:
    base = Document(parent.doc.text, dict(parent.doc.metadata))
    out = []
    for n, chunk in enumerate(as_documents(splitter.split_documents([base]))):
        cid = f"{parent.id}:{n}"
        child = Document(chunk.text, {**chunk.metadata, parent_id_key: parent.id}, cid)
        out.append(Item(cid, parent.id, child.hash(), child))
    return out
