"""Gathering the usage of model calls: ``with maru.usage.track() as t: ...``.

A :class:`UsageTracker` is a thread-safe tally per model. ``track()`` (or ``with tracker:``) puts it
on the usage scope (:mod:`maru.usage.scope`), so every model request made inside — in nested
chains, parallel branches, batches, pool threads, async tasks and streams — is recorded, and
nested blocks record into every enclosing tracker.

What is counted:

- **Requests** reach the provider. Their tokens (``input`` including the provider's
  prompt-cached part, ``cached``, ``output``) and their cost add to the totals. A request whose
  model has no price adds to ``unknown_cost_calls`` instead of the cost.
- **Cache hits** are answered by maru's response cache: they cost nothing and add nothing to the
  billed totals. What they would have cost is counted as *saved* (``saved`` tokens and
  ``saved_cost``), so the report shows what the cache is worth.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..messages import Usage
from .scope import enter_scope, exit_scope

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["FORMAT", "ModelUsage", "UsageTracker", "track"]

FORMAT = "maru.usage/1"
"""The ``format`` field of a saved report."""


@dataclass(slots=True)
class ModelUsage:
    """The tally of one model."""

    requests: int = 0
    """Requests that reached the provider (billed)."""
    cache_hits: int = 0
    """Calls answered from maru's response cache (free)."""
    streamed: int = 0
    """Of the requests, how many were streamed."""
    input_tokens: int = 0
    """Billed input tokens, the provider-cached ones included."""
    cached_tokens: int = 0
    """The part of ``input_tokens`` served from the provider's prompt cache (cheaper)."""
    output_tokens: int = 0
    cost: float = 0.0
    """USD of the requests whose price is known."""
    unknown_cost_calls: int = 0
    """Requests whose model has no price: their cost is not in ``cost``."""
    saved_input_tokens: int = 0
    """Input tokens the cache hits would have cost."""
    saved_output_tokens: int = 0
    saved_cost: float = 0.0
    """USD the cache hits would have cost (where the price is known)."""

    @property
    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens, self.cached_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def calls(self) -> int:
        return self.requests + self.cache_hits

    def add(self, other: ModelUsage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> ModelUsage:
        return ModelUsage(**{f.name: getattr(self, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, int | float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model usage") -> ModelUsage:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object of counts, got {type(data).__name__}")
        out = cls()
        known = {f.name: f for f in fields(cls)}
        for key, value in data.items():
            f = known.get(key)
            if f is None:
                continue  # a later format's extra figure: ignore
            is_float = f.type in ("float", float)
            ok = isinstance(value, int | float) if is_float else isinstance(value, int)
            if not ok or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}: {key} must be a non-negative number, got {value!r}")
            setattr(out, key, float(value) if is_float else value)
        return out


class UsageTracker:
    """Thread-safe usage, cost and cache tally per model. Use it through :func:`track`, or enter
    it directly (``with tracker:`` / ``async with tracker:``) to add to an existing tally."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._models: dict[str, ModelUsage] = {}

    # ------------------------------------------------------------------ recording
    def record(
        self,
        model: str,
        usage: Usage,
        *,
        cost: float | None,
        cached: bool = False,
        streamed: bool = False,
        local: bool = False,
    ) -> None:
        """Count one call of ``model``. ``cached=True``: answered from the response cache, so it
        costs nothing; ``usage`` is what it would have cost and is counted as saved (priced as
        :func:`~maru.usage.prices.cost_for` prices a ``local`` model)."""
        saved_cost: float | None = None
        if cached:
            from .prices import cost_for

            saved_cost = cost_for(model, usage, local=local)
        with self._lock:
            tally = self._models.get(model)
            if tally is None:
                tally = self._models[model] = ModelUsage()
            if cached:
                tally.cache_hits += 1
                tally.saved_input_tokens += usage.input_tokens
                tally.saved_output_tokens += usage.output_tokens
                if saved_cost is not None:
                    tally.saved_cost += saved_cost
                return
            tally.requests += 1
            if streamed:
                tally.streamed += 1
            tally.input_tokens += usage.input_tokens
            tally.cached_tokens += usage.cached_tokens
            tally.output_tokens += usage.output_tokens
            if cost is None:
                tally.unknown_cost_calls += 1
            else:
                tally.cost += cost

    def reset(self) -> None:
        with self._lock:
            self._models.clear()

    def merge(self, other: UsageTracker) -> None:
        """Add ``other``'s tally to this one."""
        theirs = other.by_model()
        with self._lock:
            for model, tally in theirs.items():
                self._models.setdefault(model, ModelUsage()).add(tally)

    # ------------------------------------------------------------------ reading
    def by_model(self) -> dict[str, ModelUsage]:
        """A snapshot: model name -> its tally (copies; safe to keep)."""
        with self._lock:
            return {model: tally.copy() for model, tally in self._models.items()}

    def totals(self) -> ModelUsage:
        """All models added together."""
        out = ModelUsage()
        for tally in self.by_model().values():
            out.add(tally)
        return out

    @property
    def total(self) -> Usage:
        """Billed tokens of all requests (cache hits excluded)."""
        return self.totals().usage

    @property
    def total_cost(self) -> float:
        """USD of all requests whose price is known (see ``unknown_cost_calls``)."""
        return self.totals().cost

    @property
    def unknown_cost_calls(self) -> int:
        return self.totals().unknown_cost_calls

    @property
    def cost_known(self) -> bool:
        """Whether every request had a price (``total_cost`` is then complete)."""
        return self.unknown_cost_calls == 0

    @property
    def requests(self) -> int:
        """Requests that reached a provider."""
        return self.totals().requests

    @property
    def cache_hits(self) -> int:
        return self.totals().cache_hits

    @property
    def streamed(self) -> int:
        """Of the requests, how many were streamed."""
        return self.totals().streamed

    @property
    def calls(self) -> int:
        """Requests plus cache hits."""
        return self.totals().calls

    @property
    def saved(self) -> Usage:
        """Tokens the cache hits would have cost."""
        t = self.totals()
        return Usage(t.saved_input_tokens, t.saved_output_tokens)

    @property
    def saved_cost(self) -> float:
        return self.totals().saved_cost

    def __repr__(self) -> str:
        t = self.totals()
        label = f" {self.name!r}" if self.name else ""
        unknown = f" (+{t.unknown_cost_calls} unpriced)" if t.unknown_cost_calls else ""
        return (
            f"<UsageTracker{label}: {t.requests} requests, {t.cache_hits} cache hits, "
            f"{t.input_tokens} in / {t.output_tokens} out tokens, ${t.cost:.6f}{unknown}>"
        )

    # ------------------------------------------------------------------ scope
    def __enter__(self) -> UsageTracker:
        enter_scope(self, tracker=self)
        return self

    def __exit__(self, *exc: object) -> None:
        exit_scope(self)

    async def __aenter__(self) -> UsageTracker:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        models = self.by_model()
        totals = ModelUsage()
        for tally in models.values():
            totals.add(tally)
        return {
            "format": FORMAT,
            "name": self.name,
            "models": {model: tally.to_dict() for model, tally in models.items()},
            "totals": totals.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageTracker:
        """Inverse of :meth:`to_dict`. Raises ``ValueError`` saying what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a usage report is a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt is not None and fmt != FORMAT:
            raise ValueError(f"unsupported usage report format {fmt!r}; expected {FORMAT!r}")
        models = data.get("models")
        if not isinstance(models, Mapping):
            raise ValueError('a usage report needs a "models" object (model name -> counts)')
        name = data.get("name")
        tracker = cls(name=str(name) if name is not None else None)
        for model, tally in models.items():
            tracker._models[str(model)] = ModelUsage.from_dict(tally, where=f"models[{model!r}]")
        return tracker

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON (atomically: a reader never sees half a file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UsageTracker:
        """Read a report written by :meth:`save`. Raises ``FileNotFoundError``, or ``ValueError``
        naming the file when it is not a usage report."""
        source = Path(path)
        text = source.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    # ------------------------------------------------------------------ display
    def table(self, title: str | None = None) -> Table:
        """A rich table: one row per model (most expensive first) and a total row."""
        from rich import box
        from rich.table import Table

        models = self.by_model()
        totals = ModelUsage()
        for tally in models.values():
            totals.add(tally)
        table = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
            title=title if title is not None else (f"Usage: {self.name}" if self.name else "Usage"),
            show_footer=len(models) > 1,
            caption=_caption(totals, models),
        )
        # Columns that would be all zeros are left out, so the table fits a terminal.
        hits = totals.cache_hits > 0
        columns: list[tuple[str, Callable[[ModelUsage], str]]] = [("requests", lambda t: f"{t.requests:,}")]
        if hits:
            columns.append(("cache\nhits", lambda t: f"{t.cache_hits:,}"))
        columns.append(("input", lambda t: f"{t.input_tokens:,}"))
        if totals.cached_tokens:
            columns.append(("cached\ninput", lambda t: f"{t.cached_tokens:,}"))
        columns.append(("output", lambda t: f"{t.output_tokens:,}"))
        columns.append(("cost\n(USD)", _cost_cell))
        if hits:
            columns.append(("saved\n(USD)", lambda t: _usd(t.saved_cost)))
        longest = max((len(m) for m in models), default=5)
        table.add_column("model", footer="total", overflow="fold", min_width=min(longest, 10))
        for header, cell in columns:
            table.add_column(header, justify="right", footer=cell(totals), no_wrap=True)
        for model, t in sorted(models.items(), key=lambda item: (-item[1].cost, item[0])):
            table.add_row(model, *(cell(t) for _, cell in columns))
        return table

    def __rich__(self) -> Table:
        return self.table()


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.6f}" if value < 0.01 else f"${value:,.4f}"


def _cost_cell(t: ModelUsage) -> str:
    if t.unknown_cost_calls and t.unknown_cost_calls == t.requests:
        return "unknown"
    if t.unknown_cost_calls:
        return f"{_usd(t.cost)}*"  # the caption says which models have no price
    return _usd(t.cost)


def _caption(totals: ModelUsage, models: Mapping[str, ModelUsage]) -> str:
    calls = totals.calls
    parts = [f"{calls:,} call{'s' if calls != 1 else ''}: {totals.requests:,} sent to providers"]
    if calls:
        parts.append(f"{totals.cache_hits:,} from cache ({100 * totals.cache_hits / calls:.0f}% hit rate)")
    if totals.streamed:
        parts.append(f"{totals.streamed:,} streamed")
    text = ", ".join(parts)
    unpriced = sorted(m for m, t in models.items() if t.unknown_cost_calls)
    if unpriced:
        text += (
            f". *Cost unknown for {totals.unknown_cost_calls:,} request(s) to {', '.join(unpriced)} "
            "(no price: maru.usage.register_price or MARU_PRICES)"
        )
    if totals.cache_hits:
        text += ". Tokens of cache hits are not billed; 'saved' is what they would have cost"
    return text


def track(tracker: UsageTracker | None = None, *, name: str | None = None) -> UsageTracker:
    """Track every model call in a block::

        with maru.usage.track() as t:
            chain.invoke(...)
        print(t.total, t.total_cost)
        print(t.table())      # or rich.print(t)

    Returns the tracker (a new one, or ``tracker`` to keep adding to it), which is the context
    manager (``with`` or ``async with``). Nested blocks all record the calls made inside them.
    """
    return tracker if tracker is not None else UsageTracker(name)
