"""``SemanticCache``: reuse an answer for a question that means the same as one answered before.

How a lookup decides:

1. **Exact match first.** A request whose ``key`` was stored is returned without embedding anything.
2. **Same context only.** Entries are grouped by ``(namespace, request.context_key)``: parameters,
   system prompt, earlier turns and later (tool) turns must be identical; only the last human
   question may differ. No group, no embedding call: a miss.
3. **Similar question.** The question (``request.prompt_text``) is embedded with
   ``embeddings.embed_query`` and compared by cosine similarity with the group's stored questions;
   candidates at or above ``threshold`` are tried best first.
4. **Guard.** With ``guard=True`` a candidate whose question differs in negation, numbers or named
   entities is refused (:func:`maru.cache.guard.compatible`); the next candidate is tried. A question
   the guard cannot read (a script it has no rules for — Japanese, Chinese, Thai … — or Korean
   without kiwipiepy) gets no semantic match at all: it is stored and found only as an exact
   repeat, is never embedded, and the first such question warns (:class:`UnguardedLanguageWarning`,
   once per cache and reason).

**Which embeddings.** The cache takes any object with ``embed_query``/``aembed_query``; choose the
model where you build the cache (``maru.models`` imports this package, so the default cannot live
here). Measured on question pairs built from KorQuAD and XQuAD (``bench/cache.py``):
``maru.models.E5Embeddings`` (multilingual-e5-small, offline, no torch) for any traffic that is not
English only — the default ``threshold`` (0.95) is calibrated for it. At that threshold, guard on,
it hit 100% of English and 99% of Korean light rewrites of real questions, and answered under 1% of
the pairs that must miss (figures in ``docs/benchmarks.md``). all-MiniLM-L6-v2
(``maru.rag.LocalEmbeddings``) reads English only — it splits Hangul into jamo, so Korean
similarity is mostly shared syllables — and suits an English-only cache (``threshold=0.9``).

Storage is in memory: a bounded LRU over all namespaces (``maxsize`` entries), and per group a
contiguous matrix of unit vectors (float32, grown by doubling; removal swaps the last row in), so a
search is one matrix-vector product — about a millisecond for 10 000 entries of 384 dimensions.
The question embedded by a missed lookup is remembered briefly, so the ``update`` that follows the
model call does not embed it again.

:meth:`SemanticCache.with_namespace` gives a view of the same storage under another namespace
(per tenant, per app): namespaces never see each other's entries.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .base import BaseCache, CachedResponse, CacheRequest
from .guard import compatible, prepare, unguarded

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SemanticCache", "UnguardedLanguageWarning"]

log = logging.getLogger("maru.cache")

_MEMO_SIZE = 256  # recently embedded questions kept for the update that follows a miss
# Calibrated by bench/cache.py for multilingual-e5-small with the guard on: the lowest threshold at
# which under 1% of KorQuAD/XQuAD question pairs that must miss (different questions about one
# paragraph, entity / number / negation near misses) hit, in Korean (0.95) and English (0.90).
DEFAULT_THRESHOLD = 0.95


class UnguardedLanguageWarning(UserWarning):
    """A question the guard cannot read reached a guarded semantic cache: it is served only as an
    exact repeat, never as a semantic match."""


class QueryEmbedder(Protocol):
    """What the cache asks of an embedding model; every :class:`maru.models.Embeddings` is one.
    A protocol rather than that class because ``maru.models`` imports the cache: the cache must
    not import it back."""

    def embed_query(self, text: str) -> list[float]: ...

    async def aembed_query(self, text: str) -> list[float]: ...


class _Entry:
    __slots__ = ("exact_key", "expires_at", "group", "question", "response", "row")

    def __init__(
        self,
        exact_key: tuple[str, str],
        group: _Group | None,
        question: str,
        response: CachedResponse,
        expires_at: float | None,
    ) -> None:
        self.exact_key = exact_key
        self.group = group
        self.question = question
        self.response = response
        self.expires_at = expires_at
        self.row = -1


class _Group:
    """The entries sharing one (namespace, context): their unit vectors, row by row."""

    __slots__ = ("entries", "key", "vectors")

    def __init__(self, key: tuple[str, str], dim: int, np: Any) -> None:
        self.key = key
        self.entries: list[_Entry] = []
        self.vectors = np.empty((8, dim), dtype=np.float32)

    def add(self, entry: _Entry, vector: np.ndarray, np: Any) -> None:
        n = len(self.entries)
        if n == self.vectors.shape[0]:
            grown = np.empty((2 * n, self.vectors.shape[1]), dtype=np.float32)
            grown[:n] = self.vectors
            self.vectors = grown
        self.vectors[n] = vector
        entry.row = n
        self.entries.append(entry)

    def remove(self, entry: _Entry) -> None:
        last = self.entries.pop()
        if last is not entry:
            self.vectors[entry.row] = self.vectors[last.row]
            self.entries[entry.row] = last
            last.row = entry.row
        entry.row = -1


class _Store:
    """What namespaces of one SemanticCache share: entries, groups, the LRU order, the lock."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()  # LRU, by exact key
        self.groups: dict[tuple[str, str], _Group] = {}
        self.dim: int | None = None
        self.memo: OrderedDict[str, Any] = OrderedDict()  # question -> unit vector
        self.stats = {
            "exact_hits": 0,
            "semantic_hits": 0,
            "misses": 0,
            "refused": 0,
            "unguarded": 0,
        }
        self.warned: set[str] = set()  # reasons already warned about

    def drop(self, entry: _Entry) -> None:  # lock held
        del self.entries[entry.exact_key]
        group = entry.group
        if group is not None:
            group.remove(entry)
            if not group.entries:
                del self.groups[group.key]


class SemanticCache(BaseCache):
    """An in-memory cache that also answers questions *similar* to ones it has seen.

    Args:
        embeddings: any :class:`maru.models.Embeddings`; ``embed_query`` embeds questions.
        threshold: the least cosine similarity for a match (0–1; higher is stricter). The default
            is calibrated for ``E5Embeddings`` (see the module docstring); with all-MiniLM-L6-v2
            on English-only traffic 0.9 meets the same bound.
        namespace: entries are visible only to lookups in the same namespace.
        maxsize: entries kept (all namespaces together); the least recently used go first.
        guard: refuse matches whose questions differ in negation, numbers or named entities, and
            any semantic match for a question in a script the guard cannot read.
        ttl: seconds after which an entry is no longer returned (``None``: never).
        clock: monotonic seconds, for tests.

    Needs numpy (``pip install 'maru[cache]'``).
    """

    def __init__(
        self,
        embeddings: QueryEmbedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        namespace: str = "default",
        maxsize: int = 10_000,
        guard: bool = True,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        _store: _Store | None = None,
    ) -> None:
        try:
            import numpy
        except ImportError as exc:
            raise ImportError(
                "SemanticCache needs numpy: pip install 'maru[cache]' (or pip install numpy)"
            ) from exc
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity between -1 and 1, got {threshold}")
        if maxsize < 1:
            raise ValueError(f"SemanticCache maxsize must be at least 1, got {maxsize}")
        if ttl is not None and ttl <= 0:
            raise ValueError(
                f"SemanticCache ttl must be a positive number of seconds or None, got {ttl}"
            )
        self._np = numpy
        self.embeddings = embeddings
        self.threshold = threshold
        self.namespace = namespace
        self.guard = guard
        self.ttl = ttl
        self._clock = clock
        self._store = _store if _store is not None else _Store(maxsize)

    @property
    def maxsize(self) -> int:
        return self._store.maxsize

    @property
    def stats(self) -> dict[str, int]:
        """Counts of exact hits, semantic hits, misses, guard refusals and lookups the guard could
        not read (``unguarded``; shared by namespaces)."""
        return dict(self._store.stats)

    def with_namespace(self, namespace: str) -> SemanticCache:
        """The same cache (storage, size limit, embeddings) seen from another namespace."""
        return SemanticCache(
            self.embeddings,
            threshold=self.threshold,
            namespace=namespace,
            guard=self.guard,
            ttl=self.ttl,
            clock=self._clock,
            _store=self._store,
        )

    # ----------------------------------------------------------------- vectors
    def _unit(self, vector: Any) -> np.ndarray:
        np = self._np
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        store = self._store
        if store.dim is None:
            store.dim = v.shape[0]
        elif v.shape[0] != store.dim:
            raise ValueError(
                f"the embeddings returned a {v.shape[0]}-dimensional vector, but this semantic cache "
                f"holds {store.dim}-dimensional ones; use one embedding model per cache (clear() it "
                "when you change models)"
            )
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v

    def _memo_get(self, question: str) -> np.ndarray | None:
        store = self._store
        with store.lock:
            vector = store.memo.get(question)
            if vector is not None:
                store.memo.move_to_end(question)
            return vector

    def _memo_put(self, question: str, vector: np.ndarray) -> None:
        store = self._store
        with store.lock:
            store.memo[question] = vector
            store.memo.move_to_end(question)
            while len(store.memo) > _MEMO_SIZE:
                store.memo.popitem(last=False)

    def _embed(self, question: str) -> np.ndarray:
        vector = self._memo_get(question)
        if vector is None:
            vector = self._unit(self.embeddings.embed_query(question))
            self._memo_put(question, vector)
        return vector

    async def _aembed(self, question: str) -> np.ndarray:
        vector = self._memo_get(question)
        if vector is None:
            vector = self._unit(await self.embeddings.aembed_query(question))
            self._memo_put(question, vector)
        return vector

    # ----------------------------------------------------------------- lookup in steps
    def _exact_or_group(self, request: CacheRequest) -> tuple[CachedResponse | None, bool]:
        """``(hit, worth embedding)``: an exact hit, or whether a semantic search could find one."""
        store = self._store
        exact_key = (self.namespace, request.key)
        with store.lock:
            entry = store.entries.get(exact_key)
            if entry is not None:
                if self._expired(entry):
                    store.drop(entry)
                else:
                    store.entries.move_to_end(exact_key)
                    store.stats["exact_hits"] += 1
                    return entry.response, False
        question = request.prompt_text
        searchable = self._searchable(question)  # outside the lock: it may analyse the question
        with store.lock:
            if question and not searchable:
                store.stats["unguarded"] += 1
            if not searchable or (self.namespace, request.context_key) not in store.groups:
                store.stats["misses"] += 1
                return None, False
        return None, True

    def _searchable(self, question: str) -> bool:
        """Whether ``question`` may take part in semantic matching: it is not empty and, with the
        guard on, the guard can read it (else: a warning, once per reason). Reads it ahead, so the
        guard's comparisons under the lock find it memoised."""
        if not question:
            return False
        if not self.guard:
            return True
        why = unguarded(question)
        if why is None:
            prepare(question)
            return True
        store = self._store
        with store.lock:
            first = why not in store.warned
            store.warned.add(why)
        if first:
            message = (
                f"SemanticCache: {why}, so questions like {question[:40]!r} get no semantic match "
                "(exact repeats are still served); pass guard=False to match them unguarded"
            )
            log.warning("%s", message)
            warnings.warn(message, UnguardedLanguageWarning, stacklevel=5)
        return False

    def _search(self, request: CacheRequest, vector: np.ndarray) -> CachedResponse | None:
        np = self._np
        store = self._store
        question = request.prompt_text
        with store.lock:
            group = store.groups.get((self.namespace, request.context_key))
            if group is None:
                store.stats["misses"] += 1
                return None
            n = len(group.entries)
            sims = group.vectors[:n] @ vector
            candidates = np.flatnonzero(sims >= self.threshold)
            if candidates.size:
                candidates = candidates[np.argsort(-sims[candidates], kind="stable")]
            # Decide on a snapshot of the candidates: dropping expired entries moves rows.
            ranked = [(group.entries[i], float(sims[i])) for i in candidates]
            refused = 0
            for entry, sim in ranked:
                if self._expired(entry):
                    store.drop(entry)
                    continue
                if self.guard:
                    ok, reason = compatible(entry.question, question)
                    if not ok:
                        refused += 1
                        log.debug(
                            "semantic cache: %r ~ %r (similarity %.3f) refused: %s",
                            question, entry.question, sim, reason,
                        )  # fmt: skip
                        continue
                store.entries.move_to_end(entry.exact_key)
                store.stats["semantic_hits"] += 1
                store.stats["refused"] += refused
                return entry.response
            store.stats["refused"] += refused
            store.stats["misses"] += 1
            return None

    def _store_entry(
        self, request: CacheRequest, response: CachedResponse, vector: np.ndarray | None
    ) -> None:
        """Store under the exact key and, with a question ``vector``, in the request's group."""
        store = self._store
        exact_key = (self.namespace, request.key)
        group_key = (self.namespace, request.context_key)
        expires_at = None if self.ttl is None else self._clock() + self.ttl
        with store.lock:
            old = store.entries.get(exact_key)
            if old is not None:
                store.drop(old)
            group = None
            if vector is not None:
                group = store.groups.get(group_key)
                if group is None:
                    group = store.groups[group_key] = _Group(group_key, vector.shape[0], self._np)
            entry = _Entry(exact_key, group, request.prompt_text, response, expires_at)
            if group is not None and vector is not None:  # a group is only made with a vector
                group.add(entry, vector, self._np)
            store.entries[exact_key] = entry
            while len(store.entries) > store.maxsize:
                store.drop(next(iter(store.entries.values())))

    def _expired(self, entry: _Entry) -> bool:
        return entry.expires_at is not None and entry.expires_at <= self._clock()

    # ----------------------------------------------------------------- BaseCache
    def lookup(self, request: CacheRequest) -> CachedResponse | None:
        hit, search = self._exact_or_group(request)
        if not search:
            return hit
        return self._search(request, self._embed(request.prompt_text))

    async def alookup(self, request: CacheRequest) -> CachedResponse | None:
        hit, search = self._exact_or_group(request)
        if not search:
            return hit
        return self._search(request, await self._aembed(request.prompt_text))

    def update(self, request: CacheRequest, response: CachedResponse) -> None:
        # A request without a human question, or with one the guard cannot read, can only ever
        # match exactly: no embedding needed.
        question = request.prompt_text
        vector = self._embed(question) if self._searchable(question) else None
        self._store_entry(request, response, vector)

    async def aupdate(self, request: CacheRequest, response: CachedResponse) -> None:
        question = request.prompt_text
        vector = await self._aembed(question) if self._searchable(question) else None
        self._store_entry(request, response, vector)

    def clear(self) -> None:
        """Remove the entries of this namespace (other namespaces keep theirs)."""
        store = self._store
        with store.lock:
            for entry in [e for k, e in store.entries.items() if k[0] == self.namespace]:
                store.drop(entry)

    def __len__(self) -> int:
        """Entries of this namespace."""
        with self._store.lock:
            return sum(1 for k in self._store.entries if k[0] == self.namespace)

    def __repr__(self) -> str:
        return (
            f"SemanticCache({type(self.embeddings).__name__}, threshold={self.threshold}, "
            f"namespace={self.namespace!r}, maxsize={self.maxsize}, guard={self.guard})"
        )
