"""The price table: lookup (exact, dated snapshots, provider prefixes), cost arithmetic, user prices,
unknown models."""

from __future__ import annotations

import re
import warnings
from importlib.resources import files
from pathlib import Path

import pytest

from maru.errors import ConfigurationError
from maru.messages import Usage
from maru.usage import (
    Price,
    UnknownModelPriceWarning,
    cost_of,
    load_prices,
    price_for,
    register_price,
)
from maru.usage import prices as prices_module

M = 1_000_000


def test_table_ships_with_the_package_and_is_dated() -> None:
    text = (files("maru.usage") / "prices.toml").read_text(encoding="utf-8")
    assert "gpt-4o" in text
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices_module.prices_taken_on())


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", Price(2.50, 10.00, 1.25)),
        ("gpt-4o-mini", Price(0.15, 0.60, 0.075)),
        ("gpt-4.1-nano", Price(0.10, 0.40, 0.025)),
        ("o4-mini", Price(1.10, 4.40, 0.275)),
        ("gpt-5-mini", Price(0.25, 2.00, 0.025)),
        ("gemini-2.5-flash-lite", Price(0.10, 0.40, 0.01)),
        ("gemini-2.0-flash", Price(0.10, 0.40, 0.025)),
    ],
)
def test_exact_names(model: str, expected: Price) -> None:
    assert price_for(model) == expected


def test_dated_snapshots_and_longest_prefix() -> None:
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")  # not gpt-4o's
    assert price_for("gpt-4o-2024-11-20") == price_for("gpt-4o")
    assert price_for("gpt-4o-2024-05-13") == Price(5.00, 15.00)  # its own, older price
    assert price_for("gpt-4.1-mini-2025-04-14") == price_for("gpt-4.1-mini")
    assert price_for("gemini-2.5-flash-preview-09-2025") == price_for("gemini-2.5-flash")
    assert price_for("gpt-5.1-codex") == price_for("gpt-5.1")


def test_prefix_needs_a_dash_boundary() -> None:
    # "gpt-5.9" is not a snapshot of "gpt-5": guessing its price would be wrong, so it is unknown
    assert price_for("gpt-5.9") is None
    assert price_for("gpt-4ox") is None


def test_provider_prefixes_are_stripped() -> None:
    assert price_for("openai/gpt-4o") == price_for("gpt-4o")
    assert price_for("models/gemini-2.5-pro") == price_for("gemini-2.5-pro")


def test_cost_bills_cached_input_at_the_cached_rate() -> None:
    # gpt-4o: 600k fresh input × $2.50 + 400k cached × $1.25 + 1M output × $10
    assert cost_of("gpt-4o", Usage(1 * M, 1 * M, 400_000)) == pytest.approx(1.5 + 0.5 + 10.0)
    assert cost_of("gpt-4o-mini", Usage(1000, 500)) == pytest.approx((1000 * 0.15 + 500 * 0.60) / M)


def test_without_a_cached_rate_cached_input_costs_the_input_rate() -> None:
    assert price_for("gpt-4o-2024-05-13").cached_input is None  # type: ignore[union-attr]
    assert cost_of("gpt-4o-2024-05-13", Usage(M, 0, M)) == pytest.approx(5.0)


def test_long_context_tier() -> None:
    short = cost_of("gemini-2.5-pro", Usage(200_000, 1000))
    long = cost_of("gemini-2.5-pro", Usage(200_001, 1000))
    assert short == pytest.approx((200_000 * 1.25 + 1000 * 10) / M)
    assert long == pytest.approx((200_001 * 2.50 + 1000 * 15) / M)


def test_unknown_model_warns_once_and_costs_none() -> None:
    with pytest.warns(UnknownModelPriceWarning, match="my-private-model") as record:
        assert cost_of("my-private-model", Usage(10, 10)) is None
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        assert cost_of("my-private-model", Usage(10, 10)) is None
        assert price_for("my-private-model") is None
    with pytest.warns(UnknownModelPriceWarning, match="another-model"):
        cost_of("another-model", Usage(1, 1))
    assert issubclass(UnknownModelPriceWarning, UserWarning)


def test_scripted_test_double_is_free_and_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost_of("scripted", Usage(1000, 1000, 10)) == 0.0


def test_register_price_overrides_and_covers_snapshots() -> None:
    register_price("gpt-4o", input=1.0, output=2.0, cached_input=0.5)
    assert cost_of("gpt-4o-2024-08-06", Usage(M, M, M // 2)) == pytest.approx(0.5 + 0.25 + 2.0)
    register_price("local-llama", 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost_of("local-llama-3.1", Usage(5, 5)) == 0.0
    with pytest.raises(ConfigurationError, match="must not be negative"):
        register_price("x", input=-1, output=0)


def test_load_prices_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."acme-large"]\ninput = 3.0\noutput = 9.0\ncached_input = 0.3\n'
        '[models."acme-long"]\ninput = 1.0\noutput = 2.0\n'
        "long_context = { above = 1000, input = 10.0, output = 20.0 }\n"
    )
    loaded = load_prices(path)
    assert set(loaded) == {"acme-large", "acme-long"}
    assert price_for("acme-large-0301") == Price(3.0, 9.0, 0.3)
    assert cost_of("acme-long", Usage(1001, 0)) == pytest.approx(1001 * 10.0 / M)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not = [valid", "not valid TOML"),
        ('[models."a"]\ninput = 1.0\n', "missing 'output'"),
        ('[models."a"]\ninput = "cheap"\noutput = 1\n', "input must be a number"),
        ('[models."a"]\ninput = 1\noutput = 1\nbogus = 2\n', "unknown key"),
        ('[prices]\nx = 1\n', "models"),
    ],
)
def test_bad_price_files_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as info:
        load_prices(path)
    assert "bad.toml" in str(info.value)


def test_missing_price_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prices(tmp_path / "nope.toml")


def test_maru_prices_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "extra.toml"
    path.write_text('[models."gpt-4o"]\ninput = 9.0\noutput = 9.0\n[models."corp-model"]\ninput = 1\noutput = 1\n')
    monkeypatch.setenv("MARU_PRICES", str(path))
    prices_module.reset_prices()
    assert price_for("gpt-4o") == Price(9.0, 9.0)  # overrides the shipped table
    assert price_for("corp-model") == Price(1.0, 1.0)
    register_price("gpt-4o", input=1, output=1)
    assert price_for("gpt-4o") == Price(1.0, 1.0)  # explicit registration wins


def test_broken_maru_prices_env_warns_instead_of_crashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[[")
    monkeypatch.setenv("MARU_PRICES", str(path))
    prices_module.reset_prices()
    with pytest.warns(UserWarning, match="broken.toml"):
        assert price_for("gpt-4o") == Price(2.50, 10.00, 1.25)


def test_shipped_table_is_sane() -> None:
    table = prices_module._load_builtin()
    assert len(table) >= 30
    for name, price in table.items():
        assert price.input >= 0 and price.output >= 0, name
        if price.cached_input is not None:
            assert price.cached_input <= price.input, name
        if name not in ("scripted",) and not name.startswith("text-embedding"):
            assert price.output >= price.input, name  # output is never cheaper than input
