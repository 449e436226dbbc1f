"""A tour of maru's composition primitives, in one small trip-planning chain. Runs offline.

``maru demo`` shows :func:`run_tour`; ``python examples/composition_tour.py`` runs the whole chain
every way it can be run. Each step is a plain function; the chain shows how steps are put together:

    |               sequence: one step's output is the next step's input
    {"a": …}        a dict in a pipe is a parallel map: every value runs on the same input
    parallel(...)   the same, spelled as a function
    passthrough()   hands its input on unchanged (here: keeps the trip beside the looked-up facts)
    assign(...)     adds keys to a dict computed from it
    pick(...)       keeps some keys of a dict
    branch(...)     the first (condition, step) whose condition holds, else the default
    route(...)      picks a step by a key computed from the input
    .with_retry     retries a flaky step with backoff
    .with_fallbacks tries a backup when a step fails
    .bind           fixes keyword arguments of a step
    .with_config    names the run and tags it (seen in events and traces)

and how it is run: ``invoke``, ``batch`` with ``max_concurrency``, ``stream`` and
``astream_events``. The flaky weather service and the unreachable exchange-rate service are
simulated, so the tour needs no network and prints the same thing every time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from maru import assign, branch, parallel, passthrough, pick, route, runnable

CITIES = {
    "seoul": {"country": "Korea", "currency": "KRW"},
    "busan": {"country": "Korea", "currency": "KRW"},
    "kyoto": {"country": "Japan", "currency": "JPY"},
    "lisbon": {"country": "Portugal", "currency": "EUR"},
}
OFFLINE_RATES = {"KRW": 1450.0, "JPY": 160.0, "EUR": 1.0}  # per euro, a fixed table
DAILY_BUDGET_EUR = 120


# ----------------------------------------------------------------------------- plain steps
def normalise(trip: dict[str, Any]) -> dict[str, Any]:
    return {"city": trip["city"].strip().lower(), "days": int(trip["days"])}


def country_of(trip: dict[str, Any]) -> str:
    return CITIES[trip["city"]]["country"]


def currency_of(trip: dict[str, Any]) -> str:
    return CITIES[trip["city"]]["currency"]


def merge(parts: dict[str, Any]) -> dict[str, Any]:
    """``{"trip": {...}, "facts": {...}}`` → one flat dict."""
    return {**parts["trip"], **parts["facts"]}


class FlakyWeather:
    """A simulated weather service: the first attempt of every request times out, the retry
    succeeds. It also records how many requests were in flight at once, to show what
    ``max_concurrency`` does."""

    def __init__(self) -> None:
        self.failures = 0
        self.peak_in_flight = 0
        self._in_flight = 0
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, trip: dict[str, Any]) -> str:
        with self._lock:
            first_attempt = id(trip) not in self._seen
            if first_attempt:
                self._seen.add(id(trip))
                self.failures += 1
            else:
                self._seen.discard(id(trip))
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        if first_attempt:
            raise TimeoutError(f"weather service timed out for {trip['city']}")
        time.sleep(0.02)  # the "network"
        with self._lock:
            self._in_flight -= 1
        return "sunny" if len(trip["city"]) % 2 else "light rain"


def live_rate(trip: dict[str, Any]) -> float:
    raise ConnectionError("exchange-rate service unreachable (this tour is offline)")


def offline_rate(trip: dict[str, Any]) -> float:
    return OFFLINE_RATES[trip["currency"]]


def budget(trip: dict[str, Any]) -> str:
    euros = trip["days"] * DAILY_BUDGET_EUR
    return f"{euros * trip['rate']:,.0f} {trip['currency']}"


def is_long(trip: dict[str, Any]) -> bool:
    return trip["days"] >= 4


def long_plan(trip: dict[str, Any]) -> str:
    return f"{trip['days']} days: base yourself in one area and take day trips."


def short_plan(trip: dict[str, Any]) -> str:
    return f"{trip['days']} days: stay central and walk between the sights."


def korea_tip(trip: dict[str, Any]) -> str:
    return "get a T-money card for the subway and buses."


def japan_tip(trip: dict[str, Any]) -> str:
    return "carry some cash; small shops may not take cards."


def general_tip(trip: dict[str, Any]) -> str:
    return "check opening days before you go."


def render(trip: dict[str, Any], style: str = "plain") -> str:
    lines = [
        f"{trip['city'].title()} ({trip['weather']})",
        f"plan: {trip['plan']}",
        f"tip: {trip['tip']}",
        f"budget: {trip['budget']}",
    ]
    if style == "bullets":
        return "\n".join(["* " + lines[0], *("  - " + line for line in lines[1:])])
    return " | ".join(lines)


def words(chunks: Iterator[str]) -> Iterator[str]:
    """A generator step: re-chunks text word by word, so the end of the chain streams."""
    for text in chunks:
        yield from (piece for piece in re.split(r"(\s+)", text) if piece)


# ----------------------------------------------------------------------------- the chain
def build_stages(weather: FlakyWeather) -> dict[str, Any]:
    """The chain's parts, in order, so the tour can also run a prefix of it."""
    return {
        "normalise": runnable(normalise),
        # A dict is a parallel map; passthrough keeps the trip beside the looked-up facts.
        "lookup": {"trip": passthrough(), "facts": parallel(country=country_of, currency=currency_of)},
        "merge": runnable(merge),
        "enrich": assign(
            weather=runnable(weather, name="weather", io_bound=True).with_retry(
                retry_on=TimeoutError, max_attempts=3, initial_delay=0.01, jitter=False
            ),
            rate=runnable(live_rate).with_fallbacks([runnable(offline_rate)], exceptions=ConnectionError),
        ),
        "advice": assign(
            plan=branch((is_long, long_plan), short_plan),
            tip=route(country_of, {"Korea": korea_tip, "Japan": japan_tip}, default=general_tip),
            budget=budget,
        ),
        "pick": pick("city", "weather", "plan", "tip", "budget"),
        "render": runnable(render).bind(style="bullets"),
        "words": words,
    }


def build_planner(weather: FlakyWeather) -> Any:
    s = build_stages(weather)
    chain = (
        s["normalise"]
        | s["lookup"]
        | s["merge"]
        | s["enrich"]
        | s["advice"]
        | s["pick"]
        | s["render"]
        | s["words"]
    )
    return chain.with_config(run_name="trip_planner", tags=["composition-tour"])


TRIPS = [
    {"city": " Seoul ", "days": 3},
    {"city": "Kyoto", "days": 5},
    {"city": "Lisbon", "days": 2},
    {"city": "Busan", "days": 4},
]


async def collect_events(planner: Any, trip: dict[str, Any]) -> list[Any]:
    return [event async for event in planner.astream_events(trip)]


def run_tour() -> list[tuple[str, str]]:
    """Run parts of the chain and the whole of it every way it can be run; return rows of
    (primitives, what they did), for ``maru demo``."""
    weather = FlakyWeather()
    s = build_stages(weather)
    rows: list[tuple[str, str]] = []

    looked_up = (s["normalise"] | s["lookup"]).invoke(TRIPS[0])
    rows.append(("|, dict, parallel, passthrough", repr(looked_up)))

    enriched = (s["normalise"] | s["lookup"] | s["merge"] | s["enrich"]).invoke(TRIPS[0])
    rows.append(
        (
            "assign, with_retry, with_fallbacks",
            f"weather={enriched['weather']!r} after {weather.failures} timeout(s) and a retry; "
            f"rate={enriched['rate']} from the offline table (live service unreachable)",
        )
    )

    advised = (s["normalise"] | s["lookup"] | s["merge"] | s["enrich"] | s["advice"]).invoke(TRIPS[1])
    rows.append(("branch, route", f"plan={advised['plan']!r} tip={advised['tip']!r}"))

    planner = build_planner(weather)
    rows.append(("pick, bind, invoke", planner.invoke(TRIPS[0])))

    weather.peak_in_flight = 0
    plans = planner.batch(TRIPS, max_concurrency=2)
    cities = ", ".join(plan.splitlines()[0][2:] for plan in plans)
    rows.append(
        ("batch(max_concurrency=2)", f"{len(plans)} trips, at most {weather.peak_in_flight} in flight: {cities}")
    )

    chunks = list(planner.stream(TRIPS[1]))
    rows.append(("stream", f"{len(chunks)} chunks, word by word: {chunks[:6]!r} …"))

    events = asyncio.run(collect_events(planner, TRIPS[2]))
    phases = Counter(event.phase for event in events)
    outer = events[0]
    errors = [f"{e.name} ({type(e.data['error']).__name__})" for e in events if e.phase == "error"]
    rows.append(
        (
            "astream_events, with_config",
            f"{len(events)} events {dict(phases)}; outer run {outer.name!r} tagged {outer.tags}; "
            f"errors seen and recovered from: {', '.join(errors)}",
        )
    )
    return rows
