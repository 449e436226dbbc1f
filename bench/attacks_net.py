"""Attack families against the network guard and ``maru serve``, re-run with counts.

Fetch families: private, loopback, link-local and otherwise special targets (literal addresses and
their disguises: IPv4 in IPv6, decimal and hex hosts, NAT64, 6to4); redirect chains that end on
such a target; servers that drip header or body bytes to outlast a fetch's time cap; and the
allow-list's port scope. Serve families: secrets in a 500's log (message, traceback, chained cause,
access log), server-side metadata in ``/stream_events``, lone surrogates and bad UTF-8, over-deep
JSON, and slow headers or bodies.

Everything runs on loopback (no name needs a DNS server) and is bounded: a few hundred attempts,
one-second caps, the whole run well under a minute. ``run()`` returns one record per family,
``{"family", "attempts", "refused", "got_through"}``; ``python bench/attacks_net.py`` prints them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from maru.errors import BlockedAddressError, FetchError
from maru.net import NetworkPolicy, afetch, fetch

# The misbehaving servers are the tests' own (tests/net/hostile.py, tests/serve/conftest.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CAP_S = 1.0  # the time cap every drip attack has to beat


@dataclass
class Tally:
    family: str
    attempts: int = 0
    refused: int = 0
    got_through: int = 0

    def record(self, refused: bool) -> None:
        self.attempts += 1
        if refused:
            self.refused += 1
        else:
            self.got_through += 1


# =============================================================================== loopback targets
class _Target(BaseHTTPRequestHandler):
    """Answers 200 to anything (so a fetch that reaches it gets through), or redirects:
    ``/to?URL`` answers 302 to URL, ``/hops/N?URL`` goes through N more hops first."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[-1])
            location = f"/hops/{left - 1}?{query}" if left > 0 else query
            self._answer(302, Location=location)
        elif path == "/to":
            self._answer(int(self.headers.get("X-Status", "302")), Location=query)
        elif path.startswith("/status/"):
            self._answer(int(path.rsplit("/", 1)[-1]), Location=query)
        else:
            self._answer(200)

    def _answer(self, status: int, **headers: str) -> None:
        body = b"reached"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client the guard cut off mid-answer is the expected case here


@contextmanager
def _target() -> Iterator[int]:
    server = _QuietServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _fetch_refused(url: str, policy: NetworkPolicy) -> bool:
    try:
        fetch(url, policy)
    except (BlockedAddressError, FetchError):
        return True
    return False


# =============================================================================== fetch families
def _special_targets(port: int) -> list[str]:
    hosts = [
        "127.0.0.1", "127.0.0.2", "127.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1",
        "localhost", "0.0.0.0", "0", "[::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]", "169.254.169.254", "[fe80::1]",
        "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "198.18.0.1", "224.0.0.1",
        "240.0.0.1", "255.255.255.255", "[fc00::1]", "[fd00:ec2::254]", "[ff02::1]",
    ]
    return [f"{scheme}://{host}:{port}/{path}" for host in hosts for scheme in ("http", "https")
            for path in ("", "latest/meta-data")]


def fetch_special_targets() -> Tally:
    tally = Tally("fetch: private/loopback/link-local targets")
    with _target() as port:
        for url in _special_targets(port):
            tally.record(_fetch_refused(url, NetworkPolicy(timeout_s=CAP_S)))
    return tally


def fetch_redirect_chains() -> Tally:
    """An allowed loopback port that redirects (after 0-3 hops, with 301/302/303/307/308) to a
    port or address that is not allowed."""
    tally = Tally("fetch: redirect chains to private targets")
    with _target() as allowed, _target() as other:
        policy = NetworkPolicy(allow=(f"127.0.0.1:{allowed}",), timeout_s=CAP_S, max_redirects=10)
        base = f"http://127.0.0.1:{allowed}"
        finals = [
            f"http://127.0.0.1:{other}/", f"http://localhost:{other}/", f"http://[::1]:{other}/",
            f"//127.0.0.1:{other}/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/",
            f"http://[::ffff:127.0.0.1]:{other}/", f"http://2130706433:{other}/",
            "file:///etc/passwd", "gopher://127.0.0.1:70/",
        ]
        for final in finals:
            for hops in range(4):
                tally.record(_fetch_refused(f"{base}/hops/{hops}?{final}", policy))
            for status in (301, 303, 307, 308):
                tally.record(_fetch_refused(f"{base}/status/{status}?{final}", policy))
    return tally


def _drip_family(mode: str, interval: float) -> Tally:
    from net.hostile import DripServer  # tests/net/hostile.py

    tally = Tally(f"fetch: {mode} drip (cap {CAP_S:g} s)")
    policy = NetworkPolicy(allow=("127.0.0.1",), timeout_s=CAP_S)
    calls: list[Callable[[str], Any]] = [
        lambda url: fetch(url, policy),
        lambda url: asyncio.run(afetch(url, policy)),
    ]
    with DripServer(mode, interval, cap_s=CAP_S * 5) as server:
        for call in calls * 2:
            start = time.monotonic()
            try:
                call(server.url)
                ended = False
            except FetchError:
                ended = True
            tally.record(ended and time.monotonic() - start < CAP_S + 0.5)
    return tally


def fetch_header_drip() -> Tally:
    return _drip_family("headers", 0.1)


def fetch_body_drip() -> Tally:
    return _drip_family("body", 0.9)


def fetch_port_scope() -> Tally:
    """``allow=("127.0.0.1:A",)``: every other port, by address or name, is refused."""
    tally = Tally("fetch: port scope of the allow-list")
    with _target() as allowed, _target() as other, _target() as third:
        for entry, host in ((f"127.0.0.1:{allowed}", "127.0.0.1"), (f"localhost:{allowed}", "localhost"),
                            (f"127.0.0.0/8:{allowed}", "127.0.0.1")):
            policy = NetworkPolicy(allow=(entry,), timeout_s=CAP_S)
            if _fetch_refused(f"http://{host}:{allowed}/", policy):
                raise AssertionError(f"{entry} did not let its own port through")
            for port in (other, third, 22, 80, 6379, 5432):
                for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
                    tally.record(_fetch_refused(f"http://{host}:{port}/", policy))
    return tally


# =============================================================================== serve families
FAKE_KEYS = {  # generated fakes shaped like the real ones; the value after "|" must never be seen
    "openai": "sk-proj-" + "Qm8" * 12,
    "bearer": "Bearer " + "tK5e" * 8,
    "aws id": "AKIA" + "Z7Q2W9X4C6V8B1N3",
    "aws secret": "aws_secret_access_key=" + "wJa7Xq/K9mPz" * 3,
    "google": "AIza" + "Sy9" * 10,
    "github": "ghp_" + "a1B2" * 9,
    "github pat": "github_pat_" + "11QWERTY0" * 5,
    "hugging face": "hf_" + "aB3" * 12,
    "stripe": "sk_live_" + "4eC3" * 6,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTcifQ." + "sIg9" * 10,
    "url password": "postgresql://svc:" + "pW4x" * 5 + "@db.internal/app",
    "key=value": "api_key=" + "v9Lq" * 6,
}


def _secret_part(value: str) -> str:
    """The part of a fake secret that must be masked: 16 characters from its tail (from before
    the ``@`` of a URL)."""
    return value.split("@", 1)[0][-16:]


class _ProviderError(Exception):
    pass


def _leaky_step(secret: str) -> Any:
    from maru import runnable

    def call_provider(text: str) -> str:
        try:
            raise _ProviderError(f"Error code: 401 - Incorrect API key provided: {secret}")
        except _ProviderError as exc:
            raise RuntimeError(f"the model call failed ({secret})") from exc

    return runnable(call_provider, name="provider")


def _asgi_post(app: Any, path: str, body: Any = None, content: bytes | None = None) -> Any:
    from serve.conftest import asgi_request  # tests/serve/conftest.py

    if content is not None:
        return asgi_request(app, "POST", path, content=content, headers={"content-type": "application/json"})
    return asgi_request(app, "POST", path, json=body)


@contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    """Everything the root, maru and uvicorn loggers write, as a formatter with tracebacks would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    names = ("", "uvicorn.error", "uvicorn.access")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def serve_secrets_in_500_logs() -> Tally:
    from maru.serve import create_app
    from maru.serve.logs import install_log_redaction

    tally = Tally("serve: secrets in 500 logs and answers")
    paths = {"/invoke": {"input": "x"}, "/batch": {"inputs": ["x"]}, "/stream": {"input": "x"},
             "/stream_events": {"input": "x"}}
    with _captured_logs() as stream:
        install_log_redaction()  # what `maru serve` does once uvicorn has configured logging
        for secret in FAKE_KEYS.values():
            app = create_app(_leaky_step(secret))
            for path, body in paths.items():
                start = stream.tell()
                answer = _asgi_post(app, path, body).text
                logged = stream.getvalue()[start:]
                tally.record(_secret_part(secret) not in logged + answer)
            access = logging.getLogger("uvicorn.access")
            start = stream.tell()
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST", f"/invoke?{secret}", "1.1", 500)
            tally.record(_secret_part(secret) not in stream.getvalue()[start:])
    return tally


def serve_metadata_in_stream_events() -> Tally:
    from maru import runnable
    from maru.serve import create_app

    tally = Tally("serve: server metadata in /stream_events")
    server_meta = {"api_key": FAKE_KEYS["openai"], "db": "postgresql://svc:pw-Qm8Qm8@db.internal/app",
                   "tenant": "tenant-secret-7"}
    step = runnable(lambda s: s.upper(), name="upper").with_config(metadata=server_meta, tags=["tag-secret-9"])
    chain = step | runnable(lambda s: s + "!", name="bang").with_config(metadata={"region": "vault-3"})
    app = create_app(chain)
    bodies = [
        {"input": "hi"},
        {"input": "hi", "config": {"metadata": {"user": "u1"}, "tags": ["web"]}},
        {"input": "hi", "include_names": ["upper"]},
        {"input": "hi", "include_tags": ["tag-secret-9"]},
        {"input": "hi", "config": {"metadata": {"api_key": "client-supplied"}}},
    ]
    leaks = ("pw-Qm8Qm8", "db.internal", "tenant-secret-7", "tag-secret-9", "vault-3",
             _secret_part(FAKE_KEYS["openai"]), "client-supplied")
    exposed = create_app(chain, expose_server_metadata=True)  # shows the metadata, never its secrets
    secrets = ("pw-Qm8Qm8", _secret_part(FAKE_KEYS["openai"]), "client-supplied")
    for body in bodies:
        text = _asgi_post(app, "/stream_events", body).text
        tally.record(not any(leak in text for leak in leaks))
        text = _asgi_post(exposed, "/stream_events", body).text
        tally.record(not any(secret in text for secret in secrets))
    return tally


def _clean_refusal(response: Any) -> bool:
    """A JSON 422 (or 413, for a body over the size limit) with a message: not a 400, not a
    plain-text 500, not a 200."""
    try:
        return bool(response.status_code in (413, 422) and response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return False


def serve_surrogates() -> Tally:
    from maru import runnable
    from maru.serve import create_app

    tally = Tally("serve: lone surrogates and bad UTF-8")
    app = create_app(runnable(lambda s: s, name="echo"))
    bodies = [b'{"input": "\\ud800"}', b'{"input": "\\udfff"}', b'{"input": "x\\ud83d"}',
              b'{"input": "\\ude00\\ud83d"}', b'{"\\ud800": 1, "input": "x"}',
              b'{"input": "\xed\xa0\x80"}', b'{"input": "\xed\xbf\xbf"}', b'{"input": "\xff\xfe"}',
              b'{"input": "\xc0\xaf"}', b'{"input": "\xf4\x90\x80\x80"}', b'\xfe\xff\x00{']
    for body in bodies:
        tally.record(_clean_refusal(_asgi_post(app, "/invoke", content=body)))
    return tally


def serve_deep_json() -> Tally:
    from maru import runnable
    from maru.serve import create_app

    tally = Tally("serve: over-deep JSON")
    app = create_app(runnable(lambda s: s, name="echo"))
    for depth in (1_000, 10_000, 100_000, 400_000):
        for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
            body = b'{"input": ' + opener * depth + b"1" + closer * depth + b"}"
            tally.record(_clean_refusal(_asgi_post(app, "/invoke", content=body)))
        tally.record(_clean_refusal(_asgi_post(app, "/batch", content=b'{"inputs": ' + b"[" * depth)))
    return tally


def serve_slow_clients() -> Tally:
    """Headers that never end and bodies that stop arriving, against `maru serve`'s limits
    (header and body deadlines of 1 s here)."""
    from maru import runnable
    from maru.serve import create_app
    from maru.serve.server import server_config
    from serve.conftest import live_server  # tests/serve/conftest.py

    tally = Tally("serve: slow headers and bodies (deadline 1 s)")
    app = create_app(runnable(lambda s: s, name="echo"), body_timeout_s=CAP_S)
    config = server_config(app, header_timeout_s=CAP_S, log_level="warning", access_log=False)
    with live_server(app, config) as url:
        port = int(url.rsplit(":", 1)[-1])
        for attempt in range(6):
            held = _slow_headers(port) if attempt % 2 else _slow_body(port)
            tally.record(held < CAP_S + 1.0)
    return tally


def _slow_body(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /invoke HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"input\": ")
        return _held(sock, lambda: None)


def _slow_headers(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /invoke HTTP/1.1\r\nHost: t\r\n")
        return _held(sock, lambda: sock.sendall(b"X-Drip: a\r\n"))


def _held(sock: socket.socket, drip: Callable[[], None]) -> float:
    """Seconds until the server answers or closes, dripping meanwhile (at most 5 s)."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < 5:
        try:
            drip()
            if sock.recv(4096) is not None:
                break
        except TimeoutError:
            continue
        except OSError:
            break
    return time.monotonic() - start


FAMILIES: tuple[Callable[[], Tally], ...] = (
    fetch_special_targets,
    fetch_redirect_chains,
    fetch_header_drip,
    fetch_body_drip,
    fetch_port_scope,
    serve_secrets_in_500_logs,
    serve_metadata_in_stream_events,
    serve_surrogates,
    serve_deep_json,
    serve_slow_clients,
)


def run() -> list[dict[str, Any]]:
    """Every family once: ``[{"family", "attempts", "refused", "got_through"}, ...]``."""
    logging.getLogger("maru.serve").setLevel(logging.ERROR)
    return [asdict(family()) for family in FAMILIES]


if __name__ == "__main__":
    started = time.monotonic()
    results = run()
    width = max(len(r["family"]) for r in results)
    print(f"{'family':<{width}}  attempts  refused  got through")
    for r in results:
        print(f"{r['family']:<{width}}  {r['attempts']:>8}  {r['refused']:>7}  {r['got_through']:>11}")
    print(f"({time.monotonic() - started:.1f} s)")
    print(json.dumps(results))
