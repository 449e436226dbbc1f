"""What a model call costs: a price table (data, in ``prices.toml``) and the arithmetic.

Prices are USD per 1 million tokens. The table ships with the package (figures and the date they
were taken are in ``prices.toml``); users extend or override it with :func:`register_price`,
:func:`load_prices` or a TOML file named in ``MARU_PRICES`` (several separated by ``os.pathsep``).
Precedence: registered / loaded > ``MARU_PRICES`` > the shipped table.

A model name is looked up exactly, then as the longest known name it extends with ``-`` (so the
dated snapshot ``gpt-4o-mini-2024-07-18`` costs what ``gpt-4o-mini`` costs, while ``gpt-5.3-x`` does
not silently take ``gpt-5``'s price), then again without a provider prefix (``openai/gpt-4o``,
``models/gemini-2.5-flash``). An unknown model warns once (:class:`UnknownModelPriceWarning`) and
costs ``None`` — counted as unknown, never a crash — unless it is local (in process, or a server on
a loopback address): then it costs 0, silently. Every cost of a request goes through
:func:`cost_for`, so that rule lives here only.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..messages import Usage

__all__ = [
    "Price",
    "UnknownModelPriceWarning",
    "cost_for",
    "cost_of",
    "load_prices",
    "price_for",
    "prices_taken_on",
    "register_price",
]

PER = 1_000_000


class UnknownModelPriceWarning(UserWarning):
    """A model has no price in the table; its cost is counted as unknown (``None``)."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1 million tokens. ``cached_input`` ``None``: cached input costs the input rate.
    ``long_context``: rates that apply to a whole request whose input exceeds
    ``long_context_above`` tokens (Gemini Pro models)."""

    input: float
    output: float
    cached_input: float | None = None
    long_context_above: int | None = None
    long_context: Price | None = None

    def cost(self, usage: Usage) -> float:
        """USD for ``usage``: cached input at the cached rate, the rest of the input at the input
        rate, output at the output rate."""
        rates = self
        above = self.long_context_above
        if self.long_context is not None and above is not None and usage.input_tokens > above:
            rates = self.long_context
        cached = min(max(usage.cached_tokens, 0), usage.input_tokens)
        cached_rate = rates.input if rates.cached_input is None else rates.cached_input
        return (
            (usage.input_tokens - cached) * rates.input + cached * cached_rate + usage.output_tokens * rates.output
        ) / PER


# ----------------------------------------------------------------------------- the table
_lock = threading.RLock()
_builtin: dict[str, Price] | None = None
_builtin_meta: dict[str, Any] = {}
_env: dict[str, Price] | None = None
_user: dict[str, Price] = {}
_lookups: dict[str, Price | None] = {}
_warned: set[str] = set()


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{where}: {key} must be a number (USD per 1M tokens), got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{where}: {key} must not be negative, got {value!r}")
    return float(value)


def _price_from(entry: Any, where: str) -> Price:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: expected a table with input and output, got {entry!r}")
    unknown = set(entry) - {"input", "output", "cached_input", "long_context"}
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: input, output, cached_input, long_context"
        )
    for key in ("input", "output"):
        if key not in entry:
            raise ConfigurationError(f"{where}: missing {key!r} (USD per 1M tokens)")
    cached = entry.get("cached_input")
    long_context = above = None
    if "long_context" in entry:
        lc = entry["long_context"]
        if not isinstance(lc, Mapping) or "above" not in lc:
            raise ConfigurationError(f"{where}: long_context needs above = <tokens> and the rates above it")
        above = int(_number(lc["above"], where, "long_context.above"))
        long_context = _price_from({k: v for k, v in lc.items() if k != "above"}, f"{where}.long_context")
    return Price(
        _number(entry["input"], where, "input"),
        _number(entry["output"], where, "output"),
        None if cached is None else _number(cached, where, "cached_input"),
        above,
        long_context,
    )


def _parse(data: Mapping[str, Any], where: str) -> dict[str, Price]:
    models = data.get("models")
    if not isinstance(models, Mapping):
        raise ConfigurationError(f'{where}: expected a [models."<name>"] table per model (see maru/usage/prices.toml)')
    return {str(name): _price_from(entry, f'{where}: models."{name}"') for name, entry in models.items()}


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"price file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"price file {str(path)!r} is not valid TOML: {exc}") from exc


def _load_builtin() -> dict[str, Price]:
    global _builtin
    if _builtin is None:
        import tomllib
        from importlib.resources import files

        data = tomllib.loads((files(__package__) / "prices.toml").read_text(encoding="utf-8"))
        _builtin_meta.update(data.get("meta", {}))
        _builtin = _parse(data, "maru/usage/prices.toml")
    return _builtin


def _load_env() -> dict[str, Price]:
    global _env
    if _env is None:
        table: dict[str, Price] = {}
        for entry in os.environ.get("MARU_PRICES", "").split(os.pathsep):
            if not entry:
                continue
            try:
                table.update(_parse(_read_toml(Path(entry).expanduser()), entry))
            except (OSError, ConfigurationError) as exc:
                # a broken price file must not break model calls that already happened
                warnings.warn(f"MARU_PRICES: {exc}; that file is ignored", UserWarning, stacklevel=5)
        _env = table
    return _env


def prices_taken_on() -> str:
    """The date the shipped figures were taken (``meta.taken`` in ``prices.toml``)."""
    _load_builtin()
    return str(_builtin_meta.get("taken", "unknown"))


def register_price(model: str, input: float, output: float, cached_input: float | None = None) -> Price:
    """Set the price of ``model`` (and of its dated snapshots ``model-…``), USD per 1M tokens."""
    where = f"register_price({model!r})"
    price = Price(
        _number(input, where, "input"),
        _number(output, where, "output"),
        None if cached_input is None else _number(cached_input, where, "cached_input"),
    )
    with _lock:
        _user[model] = price
        _lookups.clear()
    return price


def load_prices(path: str | os.PathLike[str]) -> dict[str, Price]:
    """Add the prices of a TOML file shaped like ``maru/usage/prices.toml``; returns them.
    Raises ``FileNotFoundError`` or :class:`~maru.errors.ConfigurationError` naming the file."""
    file = Path(path).expanduser()
    table = _parse(_read_toml(file), str(file))
    with _lock:
        _user.update(table)
        _lookups.clear()
    return table


def reset_prices() -> None:
    """Forget registered and loaded prices and re-read ``MARU_PRICES`` (for tests)."""
    global _env
    with _lock:
        _user.clear()
        _env = None
        _lookups.clear()
        _warned.clear()


def _find(name: str, tables: tuple[Mapping[str, Price], ...]) -> Price | None:
    for table in tables:
        if name in table:
            return table[name]
    best: str | None = None
    best_price: Price | None = None
    for table in tables:  # highest precedence first: on equal length the first table wins
        for known, price in table.items():
            extends = len(known) < len(name) and name[len(known)] == "-" and name.startswith(known)
            if extends and (best is None or len(known) > len(best)):
                best, best_price = known, price
    return best_price


def _lookup(model: str) -> Price | None:
    tables = (_user, _load_env(), _load_builtin())
    price = _find(model, tables)
    if price is None and "/" in model:
        price = _find(model.rsplit("/", 1)[-1], tables)
    return price


def price_for(model: str) -> Price | None:
    """The price of ``model``: exact name, else the longest known ``name-…`` prefix, else ``None``."""
    try:
        return _lookups[model]
    except KeyError:
        pass
    with _lock:
        price = _lookup(model)
        _lookups[model] = price
    return price


def cost_of(model: str, usage: Usage) -> float | None:
    """USD that ``usage`` costs on ``model``, or ``None`` (with a one-time
    :class:`UnknownModelPriceWarning`) when the model has no price."""
    price = _lookups.get(model) if model in _lookups else price_for(model)
    if price is None:
        if model not in _warned:
            with _lock:
                first = model not in _warned
                _warned.add(model)
            if first:
                warnings.warn(
                    f"no price is known for model {model!r}: its cost is counted as unknown. Add one with "
                    f"maru.usage.register_price({model!r}, input=..., output=...) (USD per 1M tokens) or "
                    "a TOML file named in MARU_PRICES.",
                    UnknownModelPriceWarning,
                    stacklevel=2,
                )
        return None
    return price.cost(usage)


def cost_for(model: str, usage: Usage, *, local: bool = False) -> float | None:
    """USD that ``usage`` costs on ``model``, as :func:`cost_of`, except that a ``local`` model
    (running on this machine) with no known price costs 0.0 and warns nothing: nobody bills it.
    A known price still applies to a local endpoint (a proxy in front of a paid model)."""
    if local and price_for(model) is None:
        return 0.0
    return cost_of(model, usage)
