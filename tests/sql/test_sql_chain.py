"""The question → SQL → rows → answer chain, driven by the scripted test double."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA
from maru.errors import SQLExecutionError, UnsafeSQLError
from maru.models.scripted import ScriptedChatModel
from maru.sql import SQLDatabase, SQLQueryChain, extract_sql

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
pytestmark = pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")


@pytest.fixture(scope="module")
def db():
    database = SQLDatabase(f"sqlite:///{CHINOOK}")
    yield database
    database.close()


def test_extract_sql_reads_fences_and_bare_text():
    assert extract_sql("Here:\n```sql\nSELECT 1\n```\nDone") == "SELECT 1"
    assert extract_sql("Sure! SELECT Name FROM Artist") == "SELECT Name FROM Artist"


def test_question_to_answer(db):
    model = ScriptedChatModel([
        "```sql\nSELECT ar.Name, count(*) AS n FROM Album al JOIN Artist ar ON ar.ArtistId = al.ArtistId "
        "GROUP BY ar.Name ORDER BY n DESC LIMIT 1\n```",
        "Iron Maiden has the most albums (21).",
    ])
    answer = SQLQueryChain(model, db).invoke("Which artist has the most albums?")
    assert answer.result.rows == [("Iron Maiden", 21)]
    assert answer.sql.startswith("SELECT ar.Name") and answer.sql.endswith("LIMIT 1")
    assert answer.answer == "Iron Maiden has the most albums (21)."
    assert not answer.repaired
    first_prompt = model.calls[0].messages
    assert "sqlite" in first_prompt[0].content and "CREATE TABLE Album" in first_prompt[0].content
    assert "CREATE TABLE Invoice (" not in first_prompt[0].content  # pruned to the relevant tables
    answer_prompt = model.calls[1].messages[0].content
    assert "| Iron Maiden | 21 |" in answer_prompt


def test_one_repair_round_shows_the_error_to_the_model(db):
    model = ScriptedChatModel([
        "SELECT count(*) FROM Albums",
        "```sql\nSELECT count(*) FROM Album\n```",
        "There are 347 albums.",
    ])
    answer = SQLQueryChain(model, db).invoke({"question": "How many albums are there?"})
    assert answer.repaired and answer.result.rows == [(347,)]
    repair_messages = model.calls[1].messages
    assert "no such table: Albums" in repair_messages[-1].content
    assert repair_messages[-2].content.startswith("```sql\nSELECT count(*) FROM Albums")


def test_unsafe_sql_from_the_model_is_refused_and_never_runs(db):
    model = ScriptedChatModel(["DELETE FROM Artist"] * 3)
    with pytest.raises(UnsafeSQLError, match="only SELECT"):
        SQLQueryChain(model, db).invoke("Remove all artists")
    assert len(model.calls) == 3  # the first try and two repairs, each refused
    assert "only SELECT" in model.calls[1].messages[-1].content
    assert db.run("SELECT count(*) FROM Artist").rows == [(275,)]


def test_sql_that_does_not_parse_gets_repair_rounds(db):
    """A small model's first reply often is not SQL at all (seen with SmolLM2 on Chinook)."""
    model = ScriptedChatModel([
        "The answer is the number of tracks in the table",
        "SELECT count(*) FROM Tracks",
        "```sql\nSELECT count(*) FROM Track\n```",
        "There are 3503 tracks.",
    ])
    answer = SQLQueryChain(model, db).invoke("How many tracks are there?")
    assert answer.repaired and answer.result.rows == [(3503,)]
    assert len(model.calls) == 4
    second_round = model.calls[2].messages
    assert "no such table: Tracks" in second_round[-1].content
    assert "CREATE TABLE Track" in second_round[0].content  # the schema stays in the conversation


def test_repairs_can_be_turned_off(db):
    model = ScriptedChatModel(["SELECT count(*) FROM Albums"])
    with pytest.raises(SQLExecutionError, match="no such table"):
        SQLQueryChain(model, db, repair=False).invoke("How many albums?")
    assert len(model.calls) == 1


def test_without_answer_step_returns_rows_only(db):
    model = ScriptedChatModel(["SELECT Name FROM Genre ORDER BY Name LIMIT 3"])
    answer = SQLQueryChain(model, db, answer=False).invoke("First three genres?")
    assert answer.answer is None and len(model.calls) == 1
    assert [r[0] for r in answer.result.rows] == ["Alternative", "Alternative & Punk", "Blues"]
    assert "| Alternative |" in str(answer)
