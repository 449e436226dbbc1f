"""MilvusStore against Milvus Lite (a local server process on a file in a temp folder)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from maru.errors import FilterError, VectorStoreError
from maru.rag.documents import Document
from maru.rag.filters import F
from maru.rag.stores.milvus import MilvusStore, compile_filter

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

pytestmark = pytest.mark.integration

_names = (f"c{i}" for i in itertools.count())


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "lite.db")


def unit(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float32)
    return list(v / np.linalg.norm(v))


DOCS = [
    Document("alpha", {"lang": "en", "year": 2019, "score": 0.5, "tags": ["a", "b"], "ok": True,
                       "title": 'say "hi" \\ there'}, "d1"),
    Document("beta", {"lang": "ko", "year": 2021, "score": 1.5, "tags": ["b"], "ok": False,
                      "title": "50% off_sale"}, "d2"),
    Document("gamma", {"lang": "en", "year": 2023, "score": 2.5, "tags": ["c"], "ok": True,
                       "title": "500 off"}, "d3"),
    Document("delta", {"lang": "ja", "year": 2020, "tags": [], "title": "plain"}, "d4"),
]
VECS = [unit(1, 0, 0, 0), unit(1, 1, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0)]


@pytest.fixture(scope="module")
def store(db: str) -> Iterator[MilvusStore]:
    s = MilvusStore(db, collection="shared")
    s.add(DOCS, VECS)
    yield s
    s.close()


def ids_of(store: MilvusStore, flt: object) -> set[str]:
    return {d.id for d, _ in store.search(unit(1, 1, 1, 1), k=10, filter=flt)}  # type: ignore[arg-type]


def test_add_get_count_and_ids(store: MilvusStore) -> None:
    assert store.count() == 4
    assert sorted(store.ids()) == ["d1", "d2", "d3", "d4"]
    got = store.get(["d3", "missing", "d1"])
    assert [d.id for d in got] == ["d3", "d1"]
    assert got[1].text == "alpha" and got[1].metadata["title"] == 'say "hi" \\ there'
    assert store.field_types()["tags"] == "list" and store.field_types()["year"] == "int"


def test_search_order_scores_and_threshold(store: MilvusStore) -> None:
    hits = store.search(unit(1, 0.1, 0, 0), k=3)
    assert [d.id for d, _ in hits] == ["d1", "d2", "d3"]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(float(np.dot(unit(1, 0.1, 0, 0), VECS[0])), abs=1e-4)
    assert hits[0][0].score == scores[0]
    assert [d.id for d, _ in store.search(unit(1, 0.1, 0, 0), k=3, score_threshold=0.5)] == ["d1", "d2"]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (F.eq("lang", "en"), {"d1", "d3"}),
        (F.ne("lang", "en"), {"d2", "d4"}),
        (F.gt("year", 2020), {"d2", "d3"}),
        (F.gte("year", 2020), {"d2", "d3", "d4"}),
        (F.lt("year", 2020), {"d1"}),
        (F.lte("score", 1.5), {"d1", "d2"}),
        (F.gt("score", 1), {"d2", "d3"}),
        (F.in_("lang", ["ko", "ja"]), {"d2", "d4"}),
        (F.nin("lang", ["ko", "ja"]), {"d1", "d3"}),
        (F.eq("ok", True), {"d1", "d3"}),
        (F.contains("tags", "b"), {"d1", "d2"}),
        (F.contains("title", "off"), {"d2", "d3"}),
        (F.contains("title", "50%"), {"d2"}),  # '%' is literal, not a wildcard
        (F.contains("title", "f_s"), {"d2"}),
        (F.contains("title", "\\ th"), {"d1"}),
        (~F.contains("title", "50%"), {"d1", "d3", "d4"}),
        (F.eq("lang", "en") & F.gt("year", 2020), {"d3"}),
        (F.eq("lang", "ko") | F.lt("year", 2020), {"d1", "d2"}),
        (~F.eq("lang", "en"), {"d2", "d4"}),
        (~(F.eq("lang", "en") | F.contains("tags", "b")), {"d4"}),
        # a missing field: the comparison is false, its negation true
        (F.eq("ok", False), {"d2"}),
        (F.ne("ok", True), {"d2", "d4"}),
        (~F.gt("score", 0), {"d4"}),
        (F.eq("title", 'say "hi" \\ there'), {"d1"}),
    ],
)
def test_filters(store: MilvusStore, flt: object, expected: set[str]) -> None:
    assert ids_of(store, flt) == expected


def test_injection_attempt_matches_nothing(store: MilvusStore) -> None:
    assert ids_of(store, F.eq("lang", 'x" or 1==1 or "')) == set()
    assert ids_of(store, F.eq("lang", 'x\\" or 1==1 or \\"')) == set()
    assert ids_of(store, F.contains("title", '%" or true or "')) == set()
    expr, exact = compile_filter(F.eq("lang", 'x" or 1==1 or "'))
    assert exact and '\\"' in expr


def test_filter_validation_errors(store: MilvusStore) -> None:
    with pytest.raises(FilterError, match="unknown filter field 'nope'"):
        store.search(unit(1, 0, 0, 0), filter=F.eq("nope", 1))
    with pytest.raises(FilterError, match="year"):
        store.search(unit(1, 0, 0, 0), filter=F.eq("year", "2020"))
    with pytest.raises(FilterError, match="control character"):
        store.search(unit(1, 0, 0, 0), filter=F.eq("lang", "a\x00b"))
    with pytest.raises(TypeError):
        store.search(unit(1, 0, 0, 0), filter="lang == 'en'")  # type: ignore[arg-type]


def test_mmr_prefers_diverse(db: str) -> None:
    with MilvusStore(db, collection=next(_names)) as s:
        s.add(
            [Document("a", {}, "a"), Document("a2", {}, "a2"), Document("b", {}, "b")],
            [unit(1, 0, 0), unit(1, 0.01, 0), unit(0.6, 0.8, 0)],
        )
        plain = [d.id for d, _ in s.search(unit(1, 0.2, 0), k=2)]
        diverse = [d.id for d, _ in s.mmr_search(unit(1, 0.2, 0), k=2, fetch_k=3, lambda_mult=0.3)]
        assert plain == ["a2", "a"]
        assert diverse[0] in ("a", "a2") and diverse[1] == "b"
        assert s.mmr_search(unit(1, 0.2, 0), k=2, filter=F.eq("x", 1)) == []


def test_upsert_replace_delete_and_reopen(db: str) -> None:
    name = next(_names)
    s = MilvusStore(db, collection=name)
    assert s.count() == 0 and s.search(unit(1, 0), k=3) == [] and s.delete(["x"]) == 0
    s.add([Document("one", {"n": 1}, "x"), Document("two", {"n": 2}, "y")], [unit(1, 0), unit(0, 1)])
    s.upsert([Document("one again", {"n": 10, "extra": "e"}, "x")], [unit(0, 1)])
    assert s.count() == 2
    assert s.get(["x"])[0] == Document("one again", {"n": 10, "extra": "e"}, "x")
    assert {d.id for d, _ in s.search(unit(0, 1), k=2)} == {"x", "y"}
    many = [Document(f"t{i}", {"n": i}, f"m{i}") for i in range(1200)]
    s.add(many, np.tile(np.asarray(unit(1, 1), dtype=np.float32), (1200, 1)))
    assert s.count() == 1202
    assert s.delete([f"m{i}" for i in range(1200)] + ["x", "nope"]) == 1201
    assert s.count() == 1 and s.get(["x"]) == []
    with pytest.raises(VectorStoreError, match="dimension 3"):
        s.add([Document("bad", {}, "z")], [[1.0, 0.0, 0.0]])
    s.close()

    reopened = MilvusStore(db, collection=name)
    assert reopened.count() == 1
    assert reopened.get(["y"])[0].text == "two"
    assert reopened.field_types() == {"extra": "str", "n": "int"}
    with pytest.raises(FilterError, match="unknown filter field"):
        reopened.search(unit(0, 1), filter=F.eq("missing", 1))
    assert [d.id for d, _ in reopened.search(unit(0, 1), k=1, filter=F.eq("n", 2))] == ["y"]
    reopened.drop()
    assert reopened.count() == 0
    reopened.close()


def test_ids_with_quotes_round_trip(db: str) -> None:
    with MilvusStore(db, collection=next(_names)) as s:
        weird = 'q"uote\\back'
        s.add([Document("w", {}, weird), Document("n", {}, "normal")], [unit(1, 0), unit(0, 1)])
        assert [d.id for d in s.get([weird])] == [weird]
        assert s.delete([weird]) == 1 and list(s.ids()) == ["normal"]


def test_text_search_with_local_embeddings(db: str) -> None:
    from maru.rag.embeddings import LocalEmbeddings

    with MilvusStore(db, collection=next(_names), embeddings=LocalEmbeddings()) as s:
        s.add_texts(
            ["The cat sleeps on the sofa.", "Interest rates rose again this quarter.",
             "Kittens like to nap on couches."],
            [{"topic": "pets"}, {"topic": "money"}, {"topic": "pets"}],
            ["cat", "rates", "kitten"],
        )
        top = [d.id for d in s.similarity_search("a sleepy cat on a couch", k=2)]
        assert set(top) == {"cat", "kitten"}
        assert [d.id for d in s.similarity_search("cat", k=1, filter=F.eq("topic", "money"))] == ["rates"]


def test_bad_configuration(db: str) -> None:
    from maru.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="collection name"):
        MilvusStore(db, collection="bad-name")
    with pytest.raises(ConfigurationError, match="end in '.db'"):
        MilvusStore("./milvus_file")
    with pytest.raises(ConfigurationError, match="metric"):
        MilvusStore(db, metric="hamming")
    with pytest.raises(VectorStoreError, match="has no embeddings"):
        MilvusStore(db, collection=next(_names)).add_texts(["x"])


def test_field_added_by_another_client_is_seen(db: str) -> None:
    name = next(_names)
    with MilvusStore(db, collection=name) as writer, MilvusStore(db, collection=name) as reader:
        writer.add([Document("a", {"old": 1}, "a")], [unit(1, 0)])
        assert reader.field_types() == {"old": "int"}
        writer.add([Document("b", {"late": "x"}, "b")], [unit(0, 1)])
        assert [d.id for d, _ in reader.search(unit(1, 1), filter=F.eq("late", "x"))] == ["b"]
