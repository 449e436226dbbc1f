"""`maru sql` (SQL shown, then the answer; read-only) and `maru chat --session` (resumes across runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_DATA
from maru.cli import chat as cli_chat
from maru.models.scripted import ScriptedChatModel
from test_cli import EchoChat, invoke
from test_cli_errors import one_message

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
DB = f"sqlite:///{CHINOOK}"
needs_chinook = pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present")


@needs_chinook
def test_sql_question_shows_sql_then_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ScriptedChatModel(["```sql\nSELECT count(*) AS albums FROM Album\n```", "There are 347 albums."])
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, url: model)
    result = invoke("sql", "How many albums?", "--db", DB)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("SELECT COUNT(*) AS albums FROM Album LIMIT 1000") < out.index("347") < out.index("answer:")
    assert "There are 347 albums." in out


@needs_chinook
def test_sql_direct_query_and_refusal() -> None:
    ok = invoke("sql", "--db", DB, "--query", "SELECT Name FROM Genre ORDER BY Name LIMIT 2")
    assert ok.exit_code == 0 and "Alternative & Punk" in ok.stdout
    refused = invoke("sql", "--db", DB, "--query", "DROP TABLE Genre")
    assert refused.exit_code == 2 and "refused" in refused.output
    schema = invoke("sql", "albums by artist", "--db", DB, "--schema")
    assert "CREATE TABLE Album" in schema.stdout


def test_sql_without_db_explains() -> None:
    result = invoke("sql", "anything")
    assert result.exit_code == 2 and "--db" in result.output


def test_chat_session_resumes_across_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = EchoChat()
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda name, url: model)
    db = str(tmp_path / "hist" / "h.sqlite")
    first = invoke("chat", "--session", "trip", "--history", db, input="서울에서 유명한 여행지는?\n/exit\n")
    assert first.exit_code == 0, first.output
    second = invoke("chat", "--session", "trip", "--history", db, input="그 근처에 맛있는 식당은?\n/exit\n")
    assert "resumed 2 earlier messages" in second.stdout
    last_call: Any = model.calls[-1]
    assert [m.text for m in last_call][:1] == ["서울에서 유명한 여행지는?"] and len(last_call) == 3
    other = invoke("chat", "--session", "other", "--history", db, input="hi\n/exit\n")
    assert "resumed" not in other.stdout and len(model.calls[-1]) == 1
    invoke("chat", "--session", "trip", "--history", db, input="/reset\n/exit\n")
    invoke("chat", "--session", "trip", "--history", db, input="again\n/exit\n")
    assert len(model.calls[-1]) == 1


@needs_chinook
def test_sql_with_a_file_path_instead_of_a_url_suggests_the_url() -> None:
    err = one_message(invoke("sql", "--db", str(CHINOOK), "--query", "SELECT 1"), 2)
    assert f"sqlite:///{CHINOOK}" in err


def test_sql_with_an_unknown_driver_names_it() -> None:
    err = one_message(invoke("sql", "--db", "mysqlx://user@host/db", "--query", "SELECT 1"), 2)
    assert "'mysqlx'" in err and "driver" in err


@needs_chinook
def test_sql_that_does_not_parse_says_where() -> None:
    err = one_message(invoke("sql", "--db", DB, "--query", "SELEC Name FRM Genre"), 2)
    assert "line 1" in err and "column" in err and "'FRM'" in err
