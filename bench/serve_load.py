"""Load test of ``maru serve``: concurrent streaming clients against a served chain, on loopback.

    .venv/bin/python bench/serve_load.py [--clients 50] [--requests 20] [--time-limit 60] [--quick]

The chain is ``ChatPromptTemplate | ScriptedChatModel(io_bound=True) | StrOutputParser`` — the
scripted model is a test double that replays one reply word by word, so the figures measure the
server (HTTP, validation, SSE, the runtime) and not a model. The server runs in its own process
(uvicorn, 127.0.0.1 only, one worker); the clients are ``httpx.AsyncClient`` tasks in this process,
each with its own keep-alive connection (opened before the clock starts) and sending its requests
one after another. Everything is bounded: ``clients × requests``
requests at most, and no new request after ``--time-limit`` seconds.

Figures (milliseconds, from the client's side):

- stream: ``POST /stream`` — time to the first ``data`` event and to the ``end`` event (last
  byte); every stream's text is checked against the reply;
- invoke: ``POST /invoke`` round trips, the same number of clients;
- requests/s over each phase's wall time;
- errors: anything but a 200 with the exact reply and a final ``end`` event;
- malformed JSON and wrong types, which must be answered 422 with a message.

No peer is run beside it (LangServe is not installed here); the last line is one JSON object of
the figures, for scripts to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

REPLY = (
    "Start at Gyeongbokgung Palace in the morning, walk through Bukchon Hanok Village, "
    "have lunch at Gwangjang Market, then climb Namsan for the view over Seoul at sunset."
)
INPUT = {"city": "Seoul", "days": 2}


def build_chain() -> Any:
    from maru.models import ScriptedChatModel
    from maru.parsers import StrOutputParser
    from maru.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a travel guide. Plan {days} days."),
            ("human", "What should I see in {city}?"),
        ]
    )
    return prompt | ScriptedChatModel(replies=[REPLY], cycle=True, io_bound=True) | StrOutputParser()


def run_server(port: int) -> None:
    """The server process: serve the chain on 127.0.0.1 until SIGTERM."""
    from maru.serve import serve

    serve(build_chain(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# =============================================================================== client side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                time.sleep(0.05)
        stop_server(proc)
    raise SystemExit("serve_load: the server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Results:
    def __init__(self) -> None:
        self.total_ms: list[float] = []
        self.first_ms: list[float] = []
        self.errors: list[str] = []
        self.skipped = 0

    def error(self, what: str) -> None:
        self.errors.append(what)


async def one_stream(client: Any, url: str, results: Results) -> None:
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    ended = False
    event = None
    try:
        async with client.stream("POST", f"{url}/stream", json={"input": INPUT}) as response:
            if response.status_code != 200:
                await response.aread()
                results.error(f"status {response.status_code}: {response.text[:200]}")
                return
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "data":
                        if first is None:
                            first = time.perf_counter()
                        pieces.append(json.loads(line[6:]))
                    elif event == "end":
                        ended = True
                    elif event == "error":
                        results.error(f"error event: {line[6:200]}")
                        return
    except Exception as exc:
        results.error(f"{type(exc).__name__}: {exc}")
        return
    end = time.perf_counter()
    if not ended or "".join(pieces) != REPLY or first is None:
        results.error(f"incomplete stream (ended={ended}, {len(pieces)} chunks)")
        return
    results.total_ms.append((end - start) * 1e3)
    results.first_ms.append((first - start) * 1e3)


async def one_invoke(client: Any, url: str, results: Results) -> None:
    start = time.perf_counter()
    try:
        response = await client.post(f"{url}/invoke", json={"input": INPUT})
    except Exception as exc:
        results.error(f"{type(exc).__name__}: {exc}")
        return
    end = time.perf_counter()
    if response.status_code != 200 or response.json() != {"output": REPLY}:
        results.error(f"status {response.status_code}: {response.text[:200]}")
        return
    results.total_ms.append((end - start) * 1e3)


async def phase(url: str, kind: str, clients: int, requests: int, deadline: float) -> tuple[Results, float]:
    import httpx

    results = Results()
    call = one_stream if kind == "stream" else one_invoke

    # One client (one keep-alive connection) per simulated user: with a single shared pool the
    # client spends more CPU than the server, and that is what would be measured. Clients are built
    # before the clock starts (each builds an SSL context, ~20 ms of blocked event loop).
    pool = [httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1)) for _ in range(clients)]
    await asyncio.gather(*(c.get(f"{url}/health") for c in pool))  # connect: figures are steady state

    async def worker(client: Any) -> None:
        for _ in range(requests):
            if time.monotonic() >= deadline:
                results.skipped += 1
                continue
            await call(client, url, results)

    start = time.perf_counter()
    budget = max(1.0, deadline - time.monotonic()) + 30  # requests in flight may finish
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in pool)), budget)
    except TimeoutError:
        results.error("phase timed out")
    wall = time.perf_counter() - start
    for client in pool:
        await client.aclose()
    return results, wall


async def validation_checks(url: str) -> tuple[int, list[str], int]:
    """Malformed JSON and wrong types: each must be a 422 whose message says what was wrong."""
    import httpx

    cases = [
        ("/invoke", b'{"input": {"city": "Seoul",', "not valid JSON"),
        ("/stream", b'{"input": {"city": "Seoul", "days": 2}', "not valid JSON"),
        ("/invoke", json.dumps({"input": {"city": ["Seoul"], "days": 2}}).encode(), "input.city"),
        ("/stream", json.dumps({"input": {"city": "Seoul", "days": {"n": 2}}}).encode(), "input.days"),
        ("/invoke", json.dumps({"input": {"city": "Seoul"}}).encode(), "input.days: Field required"),
        ("/invoke", json.dumps({"input": {"city": "Seoul", "days": 2, "dayz": 3}}).encode(), "input.dayz"),
        ("/batch", json.dumps({"inputs": {"city": "Seoul"}}).encode(), "inputs"),
        ("/invoke", json.dumps({"input": INPUT, "config": {"tags": "x"}}).encode(), "config.tags"),
    ]
    ok = 0
    problems = []
    async with httpx.AsyncClient(timeout=30) as client:
        for path, body, expected in cases:
            r = await client.post(f"{url}{path}", content=body, headers={"content-type": "application/json"})
            try:
                message = r.json()["error"]["message"]
            except Exception:
                message = r.text
            if r.status_code == 422 and expected in message:
                ok += 1
            else:
                problems.append(f"{path} {body[:60]!r}: {r.status_code} {message[:120]}")
    return ok, problems, len(cases)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client, per phase")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds; no new request after it")
    parser.add_argument("--quick", action="store_true", help="10 clients × 5 requests, 20 s")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        run_server(args.serve)
        return
    if args.quick:
        args.clients, args.requests, args.time_limit = 10, 5, 20.0
    if not (1 <= args.clients <= 1000 and 1 <= args.requests <= 10_000 and 0 < args.time_limit <= 600):
        raise SystemExit("serve_load: keep it bounded: 1..1000 clients, 1..10000 requests, 0..600 s")

    proc, url = start_server()
    try:
        started = time.monotonic()
        deadline = started + args.time_limit
        asyncio.run(phase(url, "stream", min(args.clients, 5), 2, deadline))  # warm up
        stream, stream_wall = asyncio.run(phase(url, "stream", args.clients, args.requests, deadline))
        invoke, invoke_wall = asyncio.run(phase(url, "invoke", args.clients, args.requests, deadline))
        checked, problems, cases = asyncio.run(validation_checks(url))
    finally:
        exit_code = stop_server(proc)

    streams = len(stream.total_ms)
    invokes = len(invoke.total_ms)
    figures = {
        "clients": args.clients,
        "requests_per_client": args.requests,
        "cpu_count": os.cpu_count(),
        "stream_requests": streams + len(stream.errors),
        "stream_errors": len(stream.errors),
        "stream_skipped_by_time_limit": stream.skipped,
        "stream_p50_ms": round(pct(stream.total_ms, 50), 2),
        "stream_p99_ms": round(pct(stream.total_ms, 99), 2),
        "first_chunk_p50_ms": round(pct(stream.first_ms, 50), 2),
        "first_chunk_p99_ms": round(pct(stream.first_ms, 99), 2),
        "stream_rps": round(streams / stream_wall, 1) if stream_wall else 0.0,
        "chunks_per_stream": len(list(build_chain().stream(INPUT))),
        "invoke_requests": invokes + len(invoke.errors),
        "invoke_errors": len(invoke.errors),
        "invoke_p50_ms": round(pct(invoke.total_ms, 50), 2),
        "invoke_p99_ms": round(pct(invoke.total_ms, 99), 2),
        "invoke_rps": round(invokes / invoke_wall, 1) if invoke_wall else 0.0,
        "validation_422_ok": checked,
        "validation_cases": cases,
        "server_exit_code": exit_code,
        "duration_s": round(time.monotonic() - started, 1),
    }

    print(f"maru serve load test: {args.clients} clients × {args.requests} requests, loopback, 1 server process")
    print(f"  stream  p50 {figures['stream_p50_ms']:8.2f} ms  p99 {figures['stream_p99_ms']:8.2f} ms  (to last byte)")
    print(f"  first   p50 {figures['first_chunk_p50_ms']:8.2f} ms  p99 {figures['first_chunk_p99_ms']:8.2f} ms  (to first chunk)")
    print(f"  stream  {figures['stream_rps']:8.1f} req/s, {streams} ok, {len(stream.errors)} errors, "
          f"{stream.skipped} not sent (time limit)")
    print(f"  invoke  p50 {figures['invoke_p50_ms']:8.2f} ms  p99 {figures['invoke_p99_ms']:8.2f} ms  "
          f"{figures['invoke_rps']:8.1f} req/s, {len(invoke.errors)} errors")
    print(f"  422 checks: {checked}/{cases} answered 422 with a message naming the problem")
    for what in (stream.errors + invoke.errors)[:5]:
        print(f"  error: {what}")
    for what in problems:
        print(f"  422 check failed: {what}")
    print(json.dumps(figures))
    if stream.errors or invoke.errors or problems or exit_code != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
