"""The SQL chain with the bundled SmolLM2-135M in process, held to the schema's SELECT grammar.
Assertions are on structure (a SELECT that validated and ran), never on the rows it found."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA
from maru.sql import SQLDatabase, SQLQueryChain
from maru.sql.grammar import select_grammar

CHINOOK = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(not CHINOOK.is_file(), reason="chinook not present"),
]


@pytest.fixture(scope="module")
def db():
    database = SQLDatabase(f"sqlite:///{CHINOOK}")
    yield database
    database.close()


@pytest.fixture(scope="module")
def model(local_model):
    return local_model(max_tokens=160)


def test_the_whole_schemas_grammar_is_valid_gbnf(model, db):
    from maru.models.llamacpp import _gbnf

    assert _gbnf(model.llama(), select_grammar(db.columns())) is not None


def test_an_invalid_grammar_raises_instead_of_crashing_the_process(model):
    with pytest.raises(ValueError, match="not valid GBNF"):
        model.invoke("hi", grammar='root ::= "a" | (')


def test_a_grammar_holds_a_free_text_reply(model):
    reply = model.invoke("Say anything.", grammar='root ::= ("yes" | "no") "."')
    assert reply.text in {"yes.", "no."}


@pytest.mark.parametrize("question", ["How many tracks are there?", "트랙은 모두 몇 개인가요?"])
def test_the_local_model_writes_a_select_that_runs(model, db, question):
    chain = SQLQueryChain(model, db, answer=False)
    assert chain.constrain  # in-process llama.cpp accepts grammars
    answer = chain.invoke(question)
    assert answer.sql.upper().startswith("SELECT ") and answer.answer is None
    assert answer.result.columns and isinstance(answer.result.rows, list)
