"""The SELECT grammar of a schema, the chain's ``constrain`` option and the quiet sqlglot parse —
all without a model (the grammar is proven valid against llama.cpp in test_sql_real_model.py)."""

from __future__ import annotations

import logging
import re

import pytest

from conftest import SHARED_DATA
from maru.errors import UnsafeSQLError
from maru.models.scripted import ScriptedChatModel
from maru.sql import SQLDatabase, SQLQueryChain, validate_sql
from maru.sql.grammar import select_grammar

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
needs_chinook = pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")

SINGERS = {"singer": ["Singer_ID", "Name", "Net_Worth_Millions"], "song": ["Song_ID", "Title", "Singer_ID"]}


@pytest.fixture(scope="module")
def db():
    database = SQLDatabase(f"sqlite:///{CHINOOK}")
    yield database
    database.close()


def _rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines())


def test_grammar_names_exactly_the_tables_and_columns():
    rules = _rules(select_grammar(SINGERS))
    assert rules["source-0"] == '"singer"' and rules["source-1"] == '"song"'
    assert rules["name-0"] == '"Singer_ID" | "Name" | "Net_Worth_Millions"'
    assert rules["name-1"] == '"Song_ID" | "Title" | "Singer_ID"'
    assert rules["qualified-0"] == '"singer." name-0'
    assert rules["root"] == "query-0 | query-1 | query-0-1"


def test_a_single_table_query_names_only_its_columns_and_a_join_only_qualified_ones():
    rules = _rules(select_grammar(SINGERS))
    assert rules["column-0"] == "name-0 | qualified-0"
    assert rules["column-0-1"] == "qualified-0 | qualified-1"  # no "ambiguous column name"
    assert '"singer JOIN song" " ON "' in rules["source-0-1"]
    assert '"song JOIN singer" " ON "' in rules["source-0-1"]
    assert "query-0-1" not in select_grammar({"singer": ["Name"]})


def test_every_rule_used_is_defined_and_every_query_ends_with_a_semicolon():
    grammar = select_grammar({**SINGERS, "album": ["AlbumId"]})
    rules = _rules(grammar)
    used = set(re.findall(r"\b[a-z]+(?:-[a-z0-9]+)*\b", re.sub(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]', "", grammar)))
    assert used <= set(rules)
    queries = [body for name, body in rules.items() if name.startswith("query-")]
    assert len(queries) == 3 + 3 and all(body.endswith('limit? ";"') for body in queries)
    for shape in ("DISTINCT", " JOIN ", " WHERE ", " LIKE ", " IN (", " BETWEEN ", " GROUP BY ",
                  " HAVING ", " ORDER BY ", " DESC", " LIMIT ", '"count"', '"avg"', '"max"'):
        assert shape in grammar


def test_names_that_need_quotes_are_quoted_and_escaped_as_describe_prints_them():
    rules = _rules(select_grammar({"Net Sales": ['Unit "Price"', "Plain"]}))
    assert rules["source-0"] == r'"\"Net Sales\""'
    assert rules["name-0"] == r'"\"Unit \"\"Price\"\"\"" | "Plain"'


def test_no_tables_or_a_table_without_columns_is_refused():
    with pytest.raises(ValueError, match="at least one table"):
        select_grammar({})
    with pytest.raises(ValueError, match="needs a column"):
        select_grammar({"empty": []})


@needs_chinook
def test_columns_lists_tables_in_the_order_asked(db):
    columns = db.columns(["Artist", "Genre"])
    assert columns == {"Artist": ["ArtistId", "Name"], "Genre": ["GenreId", "Name"]}
    columns["Artist"].append("changed")  # a copy: the cache stays intact
    assert db.columns(["Artist"]) == {"Artist": ["ArtistId", "Name"]}
    assert list(db.columns()) == db.table_names()


class _GrammarModel(ScriptedChatModel):
    accepts_grammar = True


@needs_chinook
def test_a_model_that_accepts_grammars_gets_one_on_every_sql_call_but_not_the_answer(db):
    model = _GrammarModel([
        "SELECT count(*) FROM Tracks;",
        "SELECT count(*) FROM Track;",
        "There are 3503 tracks.",
    ])
    answer = SQLQueryChain(model, db).invoke("How many tracks are there?")
    assert answer.repaired and answer.result.rows == [(3503,)]
    first, repair, words = (call.params.get("grammar") for call in model.calls)
    tables = db.relevant_tables("How many tracks are there?")
    assert first == repair == select_grammar(db.columns(tables))
    assert '"Track"' in first and words is None


@needs_chinook
def test_constrain_is_off_for_other_models_unless_forced(db):
    plain = ScriptedChatModel(["SELECT count(*) FROM Genre"])
    SQLQueryChain(plain, db, answer=False).invoke("How many genres?")
    assert "grammar" not in plain.calls[0].params
    forced = ScriptedChatModel(["SELECT count(*) FROM Genre"])
    SQLQueryChain(forced, db, answer=False, constrain=True).invoke("How many genres?")
    assert '"Genre"' in forced.calls[0].params["grammar"]
    refused = _GrammarModel(["SELECT count(*) FROM Genre"])
    SQLQueryChain(refused, db, answer=False, constrain=False).invoke("How many genres?")
    assert "grammar" not in refused.calls[0].params


def test_sqlglots_fallback_warning_is_not_shown_while_validating(caplog):
    caplog.set_level(logging.WARNING, logger="sqlglot")
    with pytest.raises(UnsafeSQLError, match="COMMAND"):
        validate_sql("ALTER TABLE Artist FOO BAR")
    assert not [r for r in caplog.records if r.name == "sqlglot"]
    import sqlglot

    sqlglot.parse("ALTER TABLE Artist FOO BAR", read="sqlite")  # outside validation: still logged
    assert any("Falling back" in r.getMessage() for r in caplog.records)
