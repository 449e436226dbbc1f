"""``MilvusStore``: a Milvus collection through ``pymilvus.MilvusClient`` — Milvus Lite (a local
``.db`` file) or a server (``http://host:19530``), the same code for both.

Schema: ``id`` VARCHAR primary key, ``vector`` FLOAT_VECTOR, ``text`` VARCHAR and ``metadata``
JSON, dynamic fields off. The metadata field types that filter validation needs are kept in the
collection's properties (``maru.field_types``), so they survive a reopen and are shared by every
client of the collection.

Filters compile to a Milvus boolean expression over ``metadata["field"]``. Every string literal is
escaped (backslash, quotes, newlines); characters Milvus literals cannot carry raise
:class:`~maru.errors.FilterError`. A comparison on a missing field is false and its negation true,
as in every maru store (Milvus alone would make both false), so each leaf is guarded by ``exists``.
Milvus ``like`` cannot escape ``%`` and ``_``, so a substring filter whose value holds one of them
(or a backslash) matches a wider pattern and the hits are checked exactly in Python.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError, FilterError, VectorStoreError
from ..documents import Document
from ..filters import And, Compare, Filter, Not, Or, matches, type_name
from .base import VectorStore

if TYPE_CHECKING:
    import numpy as np
    from pymilvus import MilvusClient

    from ...models.embeddings import Embeddings

__all__ = ["MilvusStore", "compile_filter"]

_TYPES_PROPERTY = "maru.field_types"
_BATCH = 1000  # ids per delete / get expression, rows per insert call
_BATCH_BYTES = 16 << 20
_MAX_LIMIT = 16384  # Milvus's largest top-k
_ID_MAX = 1024
_TEXT_MAX = 65535  # bytes: the largest VARCHAR
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_METRICS = ("COSINE", "IP", "L2")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


# ----------------------------------------------------------------------------- filters
def _string(value: str) -> str:
    """A Milvus double-quoted string literal holding exactly ``value``."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            raise FilterError(
                f"filter value {value!r} holds the control character {ch!r}, which Milvus "
                "expressions cannot carry; remove it from the value"
            )
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"filter value {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    raise FilterError(f"filter value {value!r} is not a str, int, float or bool")


class _Compiler:
    """One filter tree → one expression. ``exact`` turns false when a leaf could only be
    approximated (a ``like`` pattern that had to widen); the caller then re-checks the hits."""

    _OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def __init__(self, field_types: dict[str, str]) -> None:
        self.field_types = field_types
        self.exact = True

    def compile(self, node: Filter, positive: bool = True) -> str:
        match node:
            case Compare():
                return self._leaf(node, positive)
            case And(children):
                return "(" + " and ".join(self.compile(c, positive) for c in children) + ")"
            case Or(children):
                return "(" + " or ".join(self.compile(c, positive) for c in children) + ")"
            case Not(child):
                return f"(not {self.compile(child, not positive)})"
        raise FilterError(f"not a filter node: {node!r}")

    def _leaf(self, leaf: Compare, positive: bool) -> str:
        ref = f"metadata[{_string(leaf.field)}]"
        op, value = leaf.op, leaf.value
        if op == "ne":  # missing field: true, as ~eq
            return f"(not {self._leaf(Compare(leaf.field, 'eq', value), not positive)})"
        if op == "nin":
            return f"(not {self._leaf(Compare(leaf.field, 'in', value), not positive)})"
        if op in self._OPS:
            test = f"{ref} {self._OPS[op]} {_literal(value)}"
        elif op == "in":
            test = "(" + " or ".join(f"{ref} == {_literal(v)}" for v in value) + ")"
        elif op == "contains":
            test = self._contains(ref, leaf, positive)
        else:
            raise FilterError(f"unknown filter operator {op!r}")
        return f"(exists {ref} and {test})"

    def _contains(self, ref: str, leaf: Compare, positive: bool) -> str:
        ftype = self.field_types.get(leaf.field)
        parts = []
        if ftype != "str":
            parts.append(f"json_contains({ref}, {_literal(leaf.value)})")
        if ftype != "list" and isinstance(leaf.value, str):
            parts.append(self._like(ref, leaf.value, positive))
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def _like(self, ref: str, value: str, positive: bool) -> str:
        if not any(ch in value for ch in "%_\\"):
            return f"{ref} like {_string('%' + value + '%')}"
        # No escaping in Milvus like: '_' (any one character) stands in for each special
        # character, a superset; under a negation the superset of ~leaf is everything.
        self.exact = False
        if not positive:
            return "false"
        widened = "".join("_" if ch in "%_\\" else ch for ch in value)
        return f"{ref} like {_string('%' + widened + '%')}"


def compile_filter(node: Filter, field_types: dict[str, str] | None = None) -> tuple[str, bool]:
    """The Milvus expression for ``node`` and whether it is exact (else hits need
    :func:`~maru.rag.filters.matches`). ``field_types`` picks ``json_contains`` or ``like`` for
    ``contains``; without it both are tried."""
    compiler = _Compiler(field_types or {})
    expr = compiler.compile(node)
    return expr, compiler.exact


def _in_ids(ids: Sequence[str]) -> str:
    return "id in [" + ", ".join(_string(i) for i in ids) + "]"


# ----------------------------------------------------------------------------- store
class MilvusStore(VectorStore):
    """Documents in a Milvus collection.

    ``uri`` is a Milvus Lite file (``"./milvus.db"``, created with its folder) or a server URL
    (``"http://localhost:19530"``, with ``token`` ``"user:password"`` or an API key). The
    collection is created on the first upsert, with ``dim`` taken from ``dim=``, the embeddings'
    ``dim``, or the first vectors. ``index="auto"`` builds FLAT (exact) on Milvus Lite and HNSW
    on a server; any Milvus index type can be named, with ``index_params`` for its build
    parameters. ``metric`` is ``"COSINE"`` (scores are cosine similarities), ``"IP"`` or ``"L2"``
    (scores are negated distances, so higher is still better). ``consistency`` ``"Strong"`` makes
    every read see the writes before it; ``"Bounded"`` is faster on a busy cluster.
    """

    def __init__(
        self,
        uri: str = "./milvus.db",
        *,
        collection: str = "maru",
        embeddings: Embeddings | None = None,
        dim: int | None = None,
        token: str | None = None,
        index: str = "auto",
        index_params: dict[str, Any] | None = None,
        metric: str = "COSINE",
        consistency: str = "Strong",
        timeout: float | None = None,
    ) -> None:
        if not _NAME.fullmatch(collection):
            raise ConfigurationError(
                f"Milvus collection name {collection!r} is not valid: use letters, digits and "
                "'_', starting with a letter or '_'"
            )
        if "://" not in uri and not uri.endswith(".db"):
            raise ConfigurationError(
                f"MilvusStore uri {uri!r} is neither a server URL (http://host:19530) nor a Milvus "
                "Lite file: a Lite file name must end in '.db'"
            )
        metric = metric.upper()
        if metric not in _METRICS:
            raise ConfigurationError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
        self.uri = uri
        self.collection = collection
        self.embeddings = embeddings
        self.token = token
        self.index = index
        self.index_params = dict(index_params or {})
        self.metric = metric
        self.consistency = consistency
        self.timeout = timeout
        self._dim = dim
        self._lock = threading.RLock()
        self._client: MilvusClient | None = None
        self._exists: bool | None = None
        self._types: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MilvusStore({self.uri!r}, collection={self.collection!r})"

    @property
    def is_lite(self) -> bool:
        """Whether ``uri`` is a Milvus Lite file rather than a server."""
        return "://" not in self.uri

    # ----------------------------------------------------------------- connection
    @property
    def client(self) -> MilvusClient:
        """The ``MilvusClient``, connected on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> MilvusClient:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise ConfigurationError(
                "MilvusStore needs pymilvus (and milvus-lite for a local file): "
                "pip install 'maru[milvus]'"
            ) from exc
        uri = self.uri
        if self.is_lite:
            path = Path(uri).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            uri = str(path)
        options: dict[str, Any] = {"uri": uri}
        if self.token:
            options["token"] = self.token
        if self.timeout is not None:
            options["timeout"] = self.timeout
        try:
            client = MilvusClient(**options)
        except Exception as exc:
            what = "start Milvus Lite on" if self.is_lite else "connect to Milvus at"
            raise VectorStoreError(
                f"cannot {what} {self.uri} ({exc}); check the "
                + ("file path and that milvus-lite is installed" if self.is_lite else "URL and token")
            ) from exc
        self._open(client)
        return client

    def _open(self, client: MilvusClient) -> None:
        """Read an existing collection: its dimension and field types; load it for search."""
        self._exists = bool(client.has_collection(self.collection))
        if not self._exists:
            return
        info = client.describe_collection(self.collection)
        fields = {f["name"]: f for f in info.get("fields", [])}
        if not {"id", "vector", "text", "metadata"} <= set(fields):
            raise VectorStoreError(
                f"the Milvus collection {self.collection!r} was not made by maru (it has fields "
                f"{', '.join(sorted(fields))}); choose another collection name"
            )
        found = int(fields["vector"]["params"]["dim"])
        if self._dim is not None and self._dim != found:
            raise VectorStoreError(
                f"the collection {self.collection!r} holds {found}-dimensional vectors, not "
                f"{self._dim}; pass dim={found} or use another collection"
            )
        self._dim = found
        self._types = json.loads((info.get("properties") or {}).get(_TYPES_PROPERTY) or "{}")
        client.load_collection(self.collection)

    def _create(self, dim: int) -> None:
        from pymilvus import DataType

        client = self.client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_ID_MAX)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("text", DataType.VARCHAR, max_length=_TEXT_MAX)
        schema.add_field("metadata", DataType.JSON)
        kind = self.index.upper()
        if kind == "AUTO":
            kind = "FLAT" if self.is_lite else "HNSW"
        params = self.index_params or ({"M": 16, "efConstruction": 200} if kind == "HNSW" else {})
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type=kind, metric_type=self.metric, params=params)
        client.create_collection(
            self.collection, schema=schema, index_params=index, consistency_level=self.consistency
        )
        client.load_collection(self.collection)
        self._dim = dim
        self._exists = True

    def _ready(self) -> bool:
        """Whether the collection exists (connecting first)."""
        self.client  # noqa: B018 - connects and reads the collection
        return bool(self._exists)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._exists = None

    # ----------------------------------------------------------------- primitives
    def _upsert(self, docs: Sequence[Document], vectors: np.ndarray) -> None:
        dim = int(vectors.shape[1])
        rows = []
        new_types: dict[str, str] = {}
        for doc, vec in zip(docs, vectors, strict=True):
            assert doc.id is not None
            _check_sizes(doc)
            try:
                json.dumps(doc.metadata)
            except (TypeError, ValueError) as exc:
                raise VectorStoreError(
                    f"metadata of document {doc.id!r} is not JSON ({exc}); store str, int, float, "
                    "bool, lists and dicts only"
                ) from exc
            for key, value in doc.metadata.items():
                if key not in self._types and key not in new_types:
                    new_types[key] = type_name(value)
            rows.append({"id": doc.id, "vector": vec.tolist(), "text": doc.text, "metadata": doc.metadata})
        with self._lock:
            if not self._ready():
                self._create(self._dim or dim)
            if dim != self._dim:
                raise VectorStoreError(
                    f"vectors have dimension {dim} but the collection {self.collection!r} holds "
                    f"dimension {self._dim}; use the same embedding model, or another collection"
                )
            if new_types:
                self._save_types(new_types)
        for batch in _batches(rows):
            self.client.upsert(self.collection, batch)

    def _save_types(self, new_types: dict[str, str]) -> None:
        """Merge new field types into the collection's properties (another client may have added
        some meanwhile: read, merge, write)."""
        info = self.client.describe_collection(self.collection)
        stored = json.loads((info.get("properties") or {}).get(_TYPES_PROPERTY) or "{}")
        merged = {**new_types, **stored, **self._types}
        self.client.alter_collection_properties(
            self.collection, properties={_TYPES_PROPERTY: json.dumps(merged, sort_keys=True)}
        )
        self._types = merged

    def _check_filter(self, filter: Filter | None) -> None:
        try:
            super()._check_filter(filter)
        except FilterError:
            # Another client may have added the field since this one read the types.
            if not self._ready():
                raise
            info = self.client.describe_collection(self.collection)
            self._types = json.loads((info.get("properties") or {}).get(_TYPES_PROPERTY) or "{}")
            super()._check_filter(filter)

    def _delete(self, ids: Sequence[str]) -> int:
        if not self._ready():
            return 0
        gone = 0
        for start in range(0, len(ids), _BATCH):
            batch = list(dict.fromkeys(ids[start : start + _BATCH]))
            found = [r["id"] for r in self.client.query(self.collection, filter=_in_ids(batch), output_fields=["id"])]
            if found:
                self.client.delete(self.collection, filter=_in_ids(found))
                gone += len(found)
        return gone

    def _get(self, ids: Sequence[str]) -> list[Document]:
        if not self._ready():
            return []
        found: dict[str, Document] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH):
            rows = self.client.query(
                self.collection,
                filter=_in_ids(unique[start : start + _BATCH]),
                output_fields=["id", "text", "metadata"],
            )
            for row in rows:
                found[row["id"]] = _document(row)
        return [Document(found[i].text, dict(found[i].metadata), i) for i in ids if i in found]

    def _search(
        self, vector: np.ndarray, k: int, filter: Filter | None, with_vectors: bool
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        import numpy as np

        if not self._ready():
            return []
        if vector.shape[-1] != self._dim:
            raise VectorStoreError(
                f"the query vector has dimension {vector.shape[-1]} but the collection holds "
                f"dimension {self._dim}; embed the query with the store's model"
            )
        expr, exact = compile_filter(filter, self._types) if filter is not None else ("", True)
        fields = ["text", "metadata", *(["vector"] if with_vectors else [])]
        limit = min(k if exact else max(4 * k, k + 100), _MAX_LIMIT)
        while True:
            params: dict[str, Any] = {"metric_type": self.metric}
            if self.index.upper() == "HNSW" or (self.index.upper() == "AUTO" and not self.is_lite):
                params["params"] = {"ef": max(limit, 64)}
            result = self.client.search(
                self.collection,
                data=[vector.astype(np.float32).tolist()],
                limit=limit,
                filter=expr,
                output_fields=fields,
                search_params=params,
            )
            hits = list(result[0]) if result else []
            rows = [h for h in hits if exact or matches(filter, h["entity"].get("metadata") or {})]
            if exact or len(rows) >= k or len(hits) < limit or limit >= _MAX_LIMIT:
                break
            limit = min(limit * 4, _MAX_LIMIT)
        out: list[tuple[Document, float, np.ndarray | None]] = []
        for hit in rows[:k]:
            entity = hit["entity"]
            doc = _document({"id": hit["id"], **entity})
            score = float(hit["distance"])
            vec = np.asarray(entity["vector"], dtype=np.float32) if with_vectors else None
            out.append((doc, -score if self.metric == "L2" else score, vec))
        return out

    def count(self) -> int:
        if not self._ready():
            return 0
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def field_types(self) -> dict[str, str]:
        self._ready()
        return dict(self._types)

    def ids(self) -> Iterator[str]:
        if not self._ready():
            return
        iterator = self.client.query_iterator(
            self.collection, batch_size=_BATCH, filter="", output_fields=["id"]
        )
        try:
            while batch := iterator.next():
                for row in batch:
                    yield row["id"]
        finally:
            iterator.close()

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        with self._lock:
            if self._ready():
                self.client.drop_collection(self.collection)
            self._exists = False
            self._types = {}


def _document(row: dict[str, Any]) -> Document:
    return Document(row.get("text") or "", dict(row.get("metadata") or {}), row["id"])


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Rows in insert calls of at most ``_BATCH`` rows and about 16 MB (gRPC caps a message)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(row["text"]) * 4 + len(row["vector"]) * 4 + 256
        if batch and (len(batch) >= _BATCH or size + row_size > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def _check_sizes(doc: Document) -> None:
    assert doc.id is not None
    if len(doc.id.encode("utf-8")) > _ID_MAX:
        raise VectorStoreError(f"document id {doc.id[:40]!r}… is over {_ID_MAX} bytes; use shorter ids")
    size = len(doc.text.encode("utf-8"))
    if size > _TEXT_MAX:
        raise VectorStoreError(
            f"document {doc.id!r} has {size} bytes of text, over Milvus's {_TEXT_MAX}-byte VARCHAR "
            "limit; split documents into smaller chunks before adding them"
        )
