"""The same code on a real PostgreSQL server (a private cluster the tests start): read-only SQL,
chat history and the record manager behind a SQLAlchemy URL."""

from __future__ import annotations

import threading

import pytest

from maru.errors import SQLExecutionError, UnsafeSQLError
from maru.history import SQLHistory
from maru.messages import AIMessage, HumanMessage
from maru.rag import Document, InMemoryStore, RecordManager, index
from maru.sql import SQLDatabase

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(postgres_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS customers"))
        conn.execute(text("CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, city text)"))
        conn.execute(text("CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer REFERENCES customers(id), total numeric(8,2))"))
        conn.execute(text("INSERT INTO customers VALUES (1, 'Minji', 'Seoul'), (2, 'Jisoo', 'Busan')"))
        conn.execute(text("INSERT INTO orders (customer_id, total) VALUES (1, 12.50), (1, 30.00), (2, 8.00)"))
    engine.dispose()
    db = SQLDatabase(postgres_url, timeout_s=0.5)
    yield db
    db.close()


def test_reads_and_describes(shop):
    assert shop.dialect == "postgresql"
    result = shop.run("SELECT c.name, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY spent DESC")
    assert [(r[0], float(r[1])) for r in result.rows] == [("Minji", 42.5), ("Jisoo", 8.0)]
    assert result.sql.endswith("LIMIT 1000")
    schema = shop.describe(["orders"])
    assert "FOREIGN KEY (customer_id) REFERENCES customers(id)" in schema and "NUMERIC(8, 2)" in schema


def test_the_connection_itself_is_read_only(shop):
    with pytest.raises(SQLExecutionError, match="read-only transaction"):
        shop._execute("DELETE FROM orders")  # past the validator: the server refuses
    assert shop.run("SELECT count(*) FROM orders").rows == [(3,)]
    with pytest.raises(UnsafeSQLError):
        shop.run("UPDATE customers SET city = 'Jeju'")


def test_statement_timeout(shop):
    with pytest.raises(SQLExecutionError, match="statement timeout"):
        shop._execute("SELECT count(*) FROM generate_series(1, 100000000)")


def test_history_on_postgres(postgres_url):
    store = SQLHistory(postgres_url, table="history_test")
    store.clear("s")

    def writer(n):
        for i in range(20):
            store.append("s", [HumanMessage(f"{n}-{i}"), AIMessage(f"a{n}-{i}")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get("s")
    assert len(got) == 120 and all(got[k].content == got[k + 1].content[1:] for k in range(0, 120, 2))
    store.close()


def test_record_manager_and_index_on_postgres(postgres_url):
    records = RecordManager(postgres_url, namespace="pg-test")
    store = InMemoryStore()
    docs = [Document(f"text {i}", {"source": f"s{i % 3}"}) for i in range(30)]
    vectors = lambda texts: [[float(len(t)), 1.0] for t in texts]  # noqa: E731
    store.embeddings = type("E", (), {"embed_array": lambda self, t: __import__("numpy").asarray(vectors(t), dtype="float32"),
                                      "embed_query": lambda self, t: vectors([t])[0]})()
    first = index(docs, store, records, cleanup="full")
    again = index(docs, store, records, cleanup="full")
    shrunk = index(docs[:10], store, records, cleanup="full")
    assert (first.added, again.skipped, shrunk.deleted) == (30, 30, 20)
    assert sorted(store.ids()) == sorted(records.list_ids()) and records.count() == 10
    records.close()
