"""``bench/attacks_sql.py`` runs, stays bounded in time, and finds nothing getting through — on
SQLite and on the PostgreSQL cluster the tests start (a superuser: the hardest case)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attacks_sql.py"


def test_every_sql_attack_family_is_refused(postgres_url):
    spec = importlib.util.spec_from_file_location("attacks_sql", BENCH)
    assert spec is not None and spec.loader is not None
    attacks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(attacks)
    start = time.perf_counter()
    rows = attacks.run(postgres_url)
    assert time.perf_counter() - start < 60
    families = {row["family"] for row in rows}
    assert any(f.startswith("postgres:") for f in families) and any("resource bombs" in f for f in families)
    for row in rows:
        assert row["got_through"] == 0 and row["refused"] == row["attempts"] > 0, row
        assert row["max_s"] < attacks.TIMEOUT_S + 1, row
