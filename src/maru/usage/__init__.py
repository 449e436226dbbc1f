"""Token counting, prices, usage tracking and budgets.

    from maru import usage

    with usage.track() as t, usage.Budget(max_cost=0.50):
        chain.invoke(...)          # every model call inside is counted, priced and checked
    print(t.total, t.total_cost)
    t.save("run-usage.json")       # `maru usage run-usage.json` prints the report

Names are imported on first use, so ``import maru.models`` (which reads the usage scope on every
request) does not load the price table, tokenizers or rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _lazy
from .scope import UsageScope, active_scope, current_scope

if TYPE_CHECKING:
    from .budget import Budget, BudgetExceeded, Reservation, UnpricedModelError
    from .prices import (
        Price,
        UnknownModelPriceWarning,
        cost_for,
        cost_of,
        load_prices,
        price_for,
        register_price,
    )
    from .tokens import (
        ChatFormat,
        Tokenizer,
        count_message_tokens,
        count_tokens,
        estimate_tokens,
        get_tokenizer,
        register_hf_tokenizer,
        register_tiktoken_file,
    )
    from .tracker import ModelUsage, UsageTracker, track

_LAZY = {
    "ChatFormat": "tokens",
    "Tokenizer": "tokens",
    "count_message_tokens": "tokens",
    "count_tokens": "tokens",
    "estimate_tokens": "tokens",
    "get_tokenizer": "tokens",
    "register_hf_tokenizer": "tokens",
    "register_tiktoken_file": "tokens",
    "Price": "prices",
    "UnknownModelPriceWarning": "prices",
    "cost_for": "prices",
    "cost_of": "prices",
    "load_prices": "prices",
    "price_for": "prices",
    "register_price": "prices",
    "ModelUsage": "tracker",
    "UsageTracker": "tracker",
    "track": "tracker",
    "Budget": "budget",
    "BudgetExceeded": "budget",
    "Reservation": "budget",
    "UnpricedModelError": "budget",
}

__all__ = [
    "Budget",
    "BudgetExceeded",
    "ChatFormat",
    "ModelUsage",
    "Price",
    "Reservation",
    "Tokenizer",
    "UnknownModelPriceWarning",
    "UnpricedModelError",
    "UsageScope",
    "UsageTracker",
    "active_scope",
    "cost_for",
    "cost_of",
    "count_message_tokens",
    "count_tokens",
    "current_scope",
    "estimate_tokens",
    "get_tokenizer",
    "load_prices",
    "price_for",
    "register_hf_tokenizer",
    "register_price",
    "register_tiktoken_file",
    "track",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return __all__
