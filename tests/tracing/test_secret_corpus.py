"""No fake secret of any kind, put anywhere in a traced call, reaches any sink: the run store's
file, a JSONL file, OpenTelemetry spans, the viewer's API or the tracer's logs. The corpus and the
counting are ``bench/attacks_secrets.py``'s (the attack report runs the same code)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attacks_secrets.py"


@pytest.fixture(scope="module")
def attacks() -> Any:
    spec = importlib.util.spec_from_file_location("attacks_secrets", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attacks_secrets"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("attacks_secrets", None)


@pytest.fixture(scope="module")
def attacked(attacks: Any) -> tuple[Any, Any, dict[str, str]]:
    return attacks.attack()


def test_no_secret_gets_through_any_sink(attacks: Any, attacked: Any) -> None:
    rows = attacks.rows(*attacked)
    sinks = {"sqlite", "jsonl", "otel", "viewer_api", "logs"}
    assert len(rows) == len(attacks.MAKERS) * len(sinks)
    leaks = [row for row in rows if row["got_through"]]
    assert leaks == []
    assert all(row["refused"] == row["attempts"] > 0 for row in rows)


def test_every_sink_holds_the_traced_calls_around_the_secrets(attacked: Any) -> None:
    """The counts mean something only if the sinks hold what was traced (masked)."""
    _, _, texts = attacked
    for sink in ("sqlite", "jsonl", "otel", "viewer_api"):
        for context in ("please call the API with", "the answer quotes", "provider rejected", "settings"):
            assert context in texts[sink], (sink, context)
        assert "Traceback (most recent call last)" in texts[sink].replace("\\n", "\n"), sink
    assert "collector answered 401" in texts["logs"] and "cannot show" in texts["logs"]


def test_a_leak_would_be_counted(attacks: Any) -> None:
    rng = __import__("random").Random(0)
    secret = attacks.MAKERS["openai_key"](rng)
    assert attacks.got_through(secret, f"half of it: {secret.text[:20]}")
    assert not attacks.got_through(secret, "sk-***")
