"""A tour of maru's composition primitives, in one small trip-planning chain. Runs offline.

    python examples/composition_tour.py

The chain (plain functions put together with ``|``, dicts, ``parallel``, ``passthrough``,
``assign``, ``pick``, ``branch``, ``route``, ``with_retry``, ``with_fallbacks``, ``bind`` and
``with_config``) is in ``maru/demo/composition_tour.py``, which ``maru demo`` runs too. This
script runs it every way a chain can be run: ``invoke``, ``batch`` with ``max_concurrency``,
``stream`` and ``astream_events``. The flaky weather service and the unreachable exchange-rate
service are simulated, so the tour needs no network and prints the same thing every time.
"""

from __future__ import annotations

import asyncio

from maru.demo.composition_tour import TRIPS, FlakyWeather, build_planner, collect_events


def main() -> None:
    weather = FlakyWeather()
    planner = build_planner(weather)

    print("invoke:")
    print(planner.invoke(TRIPS[0]))
    print(f"(the weather step timed out {weather.failures}x and was retried; the exchange rate came from the fallback)\n")

    print("batch of", len(TRIPS), "trips, max_concurrency=2:")
    weather.peak_in_flight = 0
    for plan in planner.batch(TRIPS, max_concurrency=2):
        print(plan)
    print(f"(at most {weather.peak_in_flight} weather requests were in flight at once)\n")

    print("stream:")
    for chunk in planner.stream(TRIPS[1]):
        print(chunk, end="|", flush=True)
    print("\n(| marks chunk boundaries)\n")

    print("astream_events:")
    for event in asyncio.run(collect_events(planner, TRIPS[2])):
        if event.phase in ("start", "error"):
            depth = "  " * len(event.parent_ids)
            extra = f"  {type(event.data['error']).__name__}" if event.phase == "error" else ""
            print(f"{depth}{event.event:<20} {event.name}{extra}")


if __name__ == "__main__":
    main()
