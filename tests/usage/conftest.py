"""Isolation for the usage tests: no tokenizer file, price file or registration leaks in or out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from maru.usage import prices, tokens


@pytest.fixture(autouse=True)
def _isolated_usage(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    empty = tmp_path_factory.mktemp("tiktoken-cache")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    for name in ("DATA_GYM_CACHE_DIR", "MARU_TIKTOKEN_FILE", "MARU_PRICES"):
        monkeypatch.delenv(name, raising=False)
    registered = dict(tokens._registered)
    formats = dict(tokens._formats)
    tokens._registered.clear()
    tokens.clear_tokenizer_cache()
    prices.reset_prices()
    yield
    tokens._registered.clear()
    tokens._registered.update(registered)
    tokens._formats.clear()
    tokens._formats.update(formats)
    tokens.clear_tokenizer_cache()
    prices.reset_prices()
