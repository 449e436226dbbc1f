"""Hard limits on tokens, money and requests, checked before each request.

    with Budget(max_cost=0.50, max_requests=100) as budget:
        chain.batch(inputs)            # a request that would cross a limit raises BudgetExceeded

Every request **reserves** what it may use before it is sent — its counted input tokens plus its
output cap (``max_tokens``, else ``default_output_reserve``), priced at the model's rates — and the
reservation is checked against ``spent + reserved`` of every active budget under one lock, so
concurrent requests cannot overshoot together. When the response arrives, :meth:`Budget.commit`
replaces the reservation with the actual usage and cost; a failed request is
:meth:`Budget.release` d. The output cap is what makes the limit hard: a request sent without
``max_tokens`` may produce more than the default reserve, and that surplus is charged after the
fact (later requests are refused).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from ..errors import MaruError
from ..messages import Usage
from .scope import enter_scope, exit_scope

__all__ = ["Budget", "BudgetExceeded", "Reservation", "UnpricedModelError"]

Limit = Literal["max_tokens", "max_cost", "max_requests"]


class BudgetExceeded(MaruError):
    """A request would cross a budget's limit; raised before the request is sent.

    Attributes say what happened: ``limit`` (``"max_tokens"``, ``"max_cost"`` or
    ``"max_requests"``), ``limit_value``, ``spent``, ``reserved`` (by requests in flight) and
    ``requested`` (this request's reservation), in the limit's unit, and ``model``.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: Limit | None = None,
        limit_value: float | None = None,
        spent: float = 0,
        reserved: float = 0,
        requested: float = 0,
        model: str = "",
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.limit_value = limit_value
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.model = model


class UnpricedModelError(BudgetExceeded):
    """A budget with ``max_cost`` cannot price the model a request is for."""


@dataclass(slots=True)
class Reservation:
    """What one in-flight request holds on a budget until it is committed or released."""

    model: str
    input_tokens: int
    output_tokens: int
    cost: float
    open: bool = True

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _usd(value: float) -> str:
    return f"${value:,.6f}" if value < 0.01 else f"${value:,.4f}"


class Budget:
    """Limits on the model requests made inside ``with budget:`` (several active budgets are all
    checked; a budget can be entered again and from several threads or tasks).

    ``max_tokens``: input + output tokens (provider-cached input included); ``max_cost``: USD, priced
    with :func:`maru.usage.cost_of`; ``max_requests``: requests sent to providers (cache hits are free
    and not counted). ``default_output_reserve``: output tokens reserved for a request without an
    output cap. ``unknown_price``: what a ``max_cost`` budget does with a model that has no price —
    ``"raise"`` (:class:`UnpricedModelError`, before the request) or ``"ignore"`` (count it as free).
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost: float | None = None,
        max_requests: int | None = None,
        *,
        default_output_reserve: int = 1024,
        unknown_price: Literal["raise", "ignore"] = "raise",
        name: str | None = None,
    ) -> None:
        for label, value in (("max_tokens", max_tokens), ("max_cost", max_cost), ("max_requests", max_requests)):
            if value is not None and value < 0:
                raise ValueError(f"Budget {label} must be >= 0, got {value!r}")
        if default_output_reserve < 0:
            raise ValueError(f"default_output_reserve must be >= 0, got {default_output_reserve!r}")
        if unknown_price not in ("raise", "ignore"):
            raise ValueError(f"unknown_price must be 'raise' or 'ignore', got {unknown_price!r}")
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.max_requests = max_requests
        self.default_output_reserve = default_output_reserve
        self.unknown_price = unknown_price
        self.name = name
        self._lock = threading.Lock()
        self._spent_tokens = 0
        self._spent_cost = 0.0
        self._requests = 0
        self._unpriced = 0
        self._reserved_tokens = 0
        self._reserved_input = 0
        self._reserved_output = 0
        self._reserved_cost = 0.0
        self._in_flight = 0

    # ------------------------------------------------------------------ state
    @property
    def spent_tokens(self) -> int:
        return self._spent_tokens

    @property
    def spent_cost(self) -> float:
        return self._spent_cost

    @property
    def requests(self) -> int:
        """Requests committed (completed, successfully or not after sending)."""
        return self._requests

    @property
    def reserved(self) -> Usage:
        """Tokens held by requests in flight (input, output)."""
        with self._lock:
            return Usage(self._reserved_input, self._reserved_output)

    @property
    def reserved_tokens(self) -> int:
        return self._reserved_tokens

    @property
    def reserved_cost(self) -> float:
        return self._reserved_cost

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def unpriced_requests(self) -> int:
        """Requests whose cost was unknown (with ``unknown_price="ignore"``), counted as free."""
        return self._unpriced

    def remaining(self) -> dict[str, float | None]:
        """What is left of each limit (``None`` where there is no limit), reservations deducted."""
        with self._lock:
            return {
                "tokens": None
                if self.max_tokens is None
                else self.max_tokens - self._spent_tokens - self._reserved_tokens,
                "cost": None if self.max_cost is None else self.max_cost - self._spent_cost - self._reserved_cost,
                "requests": None
                if self.max_requests is None
                else self.max_requests - self._requests - self._in_flight,
            }

    def __repr__(self) -> str:
        limits = ", ".join(
            f"{k}={v!r}"
            for k, v in (("max_tokens", self.max_tokens), ("max_cost", self.max_cost), ("max_requests", self.max_requests))
            if v is not None
        )
        return (
            f"Budget({limits}; spent {self._spent_tokens} tokens, {_usd(self._spent_cost)}, "
            f"{self._requests} requests; {self._in_flight} in flight)"
        )

    # ------------------------------------------------------------------ reserve / commit / release
    def reserve(
        self, model: str, input_tokens: int, output_tokens: int | None = None, *, local: bool = False
    ) -> Reservation:
        """Hold ``input_tokens`` + ``output_tokens`` (``None``: ``default_output_reserve``) and
        their estimated cost for one request of ``model``, or raise :class:`BudgetExceeded` if
        spent + reserved + this request would cross a limit. Atomic across threads. ``local``: the
        model runs on this machine, so without a known price it is free (not unpriced)."""
        output = self.default_output_reserve if output_tokens is None else max(0, int(output_tokens))
        cost = 0.0
        if self.max_cost is not None:
            from .prices import cost_for

            estimate = cost_for(model, Usage(input_tokens, output), local=local)
            if estimate is None:
                if self.unknown_price == "raise":
                    raise UnpricedModelError(
                        f"{self._label()}: cannot enforce max_cost={_usd(self.max_cost)} for model {model!r}, "
                        f"which has no price. Register one (maru.usage.register_price({model!r}, input=..., "
                        "output=...), USD per 1M tokens; 0 for a local model) or create the budget with "
                        "unknown_price='ignore' to let its requests through as free.",
                        limit="max_cost",
                        limit_value=self.max_cost,
                        spent=self._spent_cost,
                        reserved=self._reserved_cost,
                        model=model,
                    )
            else:
                cost = estimate
        tokens = input_tokens + output
        with self._lock:
            if self.max_requests is not None and self._requests + self._in_flight + 1 > self.max_requests:
                raise self._exceeded(
                    "max_requests", self.max_requests, self._requests, self._in_flight, 1, model,
                    f"{self._requests} sent, {self._in_flight} in flight, this request makes "
                    f"{self._requests + self._in_flight + 1}",
                )
            if self.max_tokens is not None and self._spent_tokens + self._reserved_tokens + tokens > self.max_tokens:
                raise self._exceeded(
                    "max_tokens", self.max_tokens, self._spent_tokens, self._reserved_tokens, tokens, model,
                    f"spent {self._spent_tokens:,} tokens in {self._requests} requests, "
                    f"{self._reserved_tokens:,} reserved by {self._in_flight} in flight, this request asks for "
                    f"{tokens:,} ({input_tokens:,} input + {output:,} output reserved)",
                )
            if self.max_cost is not None and self._spent_cost + self._reserved_cost + cost > self.max_cost + 1e-12:
                raise self._exceeded(
                    "max_cost", self.max_cost, self._spent_cost, self._reserved_cost, cost, model,
                    f"spent {_usd(self._spent_cost)} in {self._requests} requests, "
                    f"{_usd(self._reserved_cost)} reserved by {self._in_flight} in flight, this request asks "
                    f"for up to {_usd(cost)} ({input_tokens:,} input + {output:,} output tokens)",
                )
            self._reserved_tokens += tokens
            self._reserved_input += input_tokens
            self._reserved_output += output
            self._reserved_cost += cost
            self._in_flight += 1
        return Reservation(model, input_tokens, output, cost)

    def _label(self) -> str:
        return f"budget {self.name!r}" if self.name else "budget"

    def _exceeded(
        self, limit: Limit, value: float, spent: float, reserved: float, requested: float, model: str, detail: str
    ) -> BudgetExceeded:
        shown = _usd(value) if limit == "max_cost" else f"{value:,}"
        hint = (
            " Set max_tokens on the request to reserve less output."
            if limit in ("max_tokens", "max_cost")
            else ""
        )
        return BudgetExceeded(
            f"{self._label()} exceeded: {limit}={shown} would be crossed by a request to {model!r}: {detail}. "
            f"The request was not sent.{hint}",
            limit=limit,
            limit_value=value,
            spent=spent,
            reserved=reserved,
            requested=requested,
            model=model,
        )

    def _close(self, reservation: Reservation) -> None:
        # lock held
        if reservation.open:
            reservation.open = False
            self._reserved_tokens -= reservation.tokens
            self._reserved_input -= reservation.input_tokens
            self._reserved_output -= reservation.output_tokens
            self._reserved_cost -= reservation.cost
            self._in_flight -= 1
            if self._in_flight == 0:  # no float drift once nothing is in flight
                self._reserved_cost = 0.0

    def commit(self, reservation: Reservation, usage: Usage, cost: float | None) -> None:
        """Replace ``reservation`` with what the request actually used and cost. ``cost`` ``None``
        (unknown price) counts as free and is tallied in ``unpriced_requests``."""
        with self._lock:
            self._close(reservation)
            self._spent_tokens += usage.input_tokens + usage.output_tokens
            self._requests += 1
            if cost is None:
                self._unpriced += 1
            else:
                self._spent_cost += cost

    def release(self, reservation: Reservation) -> None:
        """Give back ``reservation`` of a request that failed before using anything. Idempotent."""
        with self._lock:
            self._close(reservation)

    # ------------------------------------------------------------------ scope
    def __enter__(self) -> Budget:
        enter_scope(self, budget=self)
        return self

    def __exit__(self, *exc: object) -> None:
        exit_scope(self)

    async def __aenter__(self) -> Budget:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)
