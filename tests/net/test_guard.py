"""The network guard against a loopback HTTP server started here, and ``check_url`` against literal
addresses and a patched resolver (no test touches the outside network)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from maru.errors import BlockedAddressError, FetchError
from maru.net import FetchResult, NetworkPolicy, afetch, check_url, fetch, is_blocked_address

LOOPBACK = NetworkPolicy(allow=("127.0.0.1",))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, length: bool = True, **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/text":
            self._send(200, "안녕 hello".encode(), "text/plain; charset=utf-8")
        elif path == "/euckr":
            self._send(200, "한국어".encode("euc-kr"), "text/plain; charset=euc-kr")
        elif path == "/host":
            self._send(200, self.headers["Host"].encode(), "text/plain")
        elif path == "/big":  # announces its size
            self._send(200, b"x" * 5000, "text/plain")
        elif path == "/big-stream":  # no Content-Length: only counting the stream catches it
            self._send(200, b"y" * 5000, "text/plain", length=False)
        elif path == "/binary":
            self._send(200, b"\x00\x01", "application/octet-stream")
        elif path == "/missing":
            self._send(404, b"nope", "text/plain")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", Location=query)
        elif path == "/loop":
            self._send(302, b"", "text/plain", Location="/loop")
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host names resolve to what the test puts here; IP literals resolve as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, str) and host in table:
            out = []
            for ip in table[host]:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                addr = (ip, port or 0, 0, 0) if family == socket.AF_INET6 else (ip, port or 0)
                out.append((family, socket.SOCK_STREAM, 6, "", addr))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# ================================================================================ check_url
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.8.9.10/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
        "http://0.0.0.0/",
        "http://[::]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
    ],
)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddressError) as info:
        check_url(url)
    assert "NetworkPolicy(allow=" in str(info.value)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked_address(address)
    host = f"[{address}]" if ":" in address else address
    vetted = check_url(f"https://{host}/x")
    assert [ipaddress.ip_address(a) for a in vetted] == [ipaddress.ip_address(address)]


def test_blocked_message_names_host_address_and_fix(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["internal.example"] = ["192.168.0.7"]
    with pytest.raises(BlockedAddressError) as info:
        check_url("https://internal.example/admin")
    message = str(info.value)
    assert "internal.example" in message and "192.168.0.7" in message
    assert "NetworkPolicy(allow=('internal.example',))" in message


def test_any_private_address_blocks_a_host(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.example"] = ["93.184.216.34", "10.0.0.5"]
    with pytest.raises(BlockedAddressError, match="10.0.0.5"):
        check_url("http://mixed.example/")
    fake_dns["public.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    assert check_url("http://public.example/") == ["93.184.216.34", "2606:2800:220:1::1"]


def test_host_resolving_to_mapped_loopback_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["sneaky.example"] = ["::ffff:127.0.0.1"]
    with pytest.raises(BlockedAddressError):
        check_url("http://sneaky.example/")


def test_allow_list_by_host_address_and_network(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["db.internal"] = ["10.1.2.3"]
    assert check_url("http://db.internal/", NetworkPolicy(allow=("DB.internal",))) == ["10.1.2.3"]
    assert check_url("http://db.internal/", NetworkPolicy(allow=("10.0.0.0/8",))) == ["10.1.2.3"]
    assert check_url("http://db.internal/", NetworkPolicy(allow=("10.1.2.3",))) == ["10.1.2.3"]
    with pytest.raises(BlockedAddressError):
        check_url("http://db.internal/", NetworkPolicy(allow=("10.1.2.4", "192.168.0.0/16")))
    # an allowed IPv4 address also covers its IPv4-mapped IPv6 spelling
    assert len(check_url("http://[::ffff:127.0.0.1]/", LOOPBACK)) == 1


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///nohost"]
)
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(BlockedAddressError):
        check_url(url)


def test_unresolvable_host_is_a_fetch_error(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["nowhere.invalid"] = []
    with pytest.raises(FetchError, match="nowhere.invalid"):
        check_url("http://nowhere.invalid/")


def test_policy_is_hashable_and_takes_a_list() -> None:
    policy = NetworkPolicy(allow=["localhost", "10.0.0.0/8"])  # type: ignore[arg-type]
    assert policy.allow == ("localhost", "10.0.0.0/8")
    assert hash(policy) == hash(NetworkPolicy(allow=("localhost", "10.0.0.0/8")))
    assert policy.allows_content_type("text/html; charset=utf-8")
    assert not policy.allows_content_type("image/png")
    assert NetworkPolicy(allowed_content_types=("image/*",)).allows_content_type("image/png")


# ==================================================================================== fetch
def test_loopback_is_refused_unless_allowed(server: str) -> None:
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        fetch(f"{server}/text")
    result = fetch(f"{server}/text", LOOPBACK)
    assert isinstance(result, FetchResult)
    assert result.status == 200
    assert result.url == f"{server}/text"
    assert result.media_type == "text/plain"
    assert result.text == "안녕 hello"


def test_charset_from_header(server: str) -> None:
    assert fetch(f"{server}/euckr", LOOPBACK).text == "한국어"


def test_redirect_to_a_blocked_address_is_refused(server: str) -> None:
    with pytest.raises(BlockedAddressError, match="169.254.169.254"):
        fetch(f"{server}/redirect?http://169.254.169.254/latest/meta-data/", LOOPBACK)
    # another loopback address the policy does not name
    with pytest.raises(BlockedAddressError, match="127.0.0.2"):
        fetch(f"{server}/redirect?http://127.0.0.2:1/", LOOPBACK)
    with pytest.raises(BlockedAddressError):
        fetch(f"{server}/redirect?file:///etc/passwd", LOOPBACK)


def test_redirect_within_allowed_hosts_is_followed(server: str) -> None:
    result = fetch(f"{server}/redirect?/text", LOOPBACK)
    assert result.url == f"{server}/text"
    assert result.text == "안녕 hello"


def test_too_many_redirects(server: str) -> None:
    with pytest.raises(FetchError, match="redirected more than 3"):
        fetch(f"{server}/loop", NetworkPolicy(allow=("127.0.0.1",), max_redirects=3))


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
def test_oversize_body(server: str, path: str) -> None:
    with pytest.raises(FetchError, match="max_bytes"):
        fetch(f"{server}{path}", NetworkPolicy(allow=("127.0.0.1",), max_bytes=1000))
    assert len(fetch(f"{server}{path}", LOOPBACK).content) == 5000


def test_content_type_not_allowed(server: str) -> None:
    with pytest.raises(FetchError, match="application/octet-stream"):
        fetch(f"{server}/binary", LOOPBACK)
    policy = NetworkPolicy(
        allow=("127.0.0.1",), allowed_content_types=("application/octet-stream",)
    )
    assert fetch(f"{server}/binary", policy).content == b"\x00\x01"


def test_http_error_status(server: str) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch(f"{server}/missing", LOOPBACK)
    assert fetch(f"{server}/missing", LOOPBACK, raise_for_status=False).status == 404


def test_timeout(server: str) -> None:
    with pytest.raises(FetchError, match="timed out|longer than"):
        fetch(f"{server}/slow", NetworkPolicy(allow=("127.0.0.1",), timeout_s=0.3))


def test_connects_to_the_vetted_address_not_a_second_lookup(
    server: str, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to the allowed loopback address when checked and to a
    blocked one afterwards; the fetch must still go to the address it vetted, with the name as Host."""
    port = server.rsplit(":", 1)[1]
    fake = socket.getaddrinfo  # the fake_dns resolver
    lookups: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            fake_dns[host] = ["10.9.9.9"] if lookups else ["127.0.0.1"]
            lookups.append(host)
        return fake(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = fetch(f"http://rebind.test:{port}/host", LOOPBACK)
    assert result.text == f"rebind.test:{port}"
    assert lookups == ["rebind.test"]


def test_afetch(server: str) -> None:
    async def main() -> None:
        with pytest.raises(BlockedAddressError):
            await afetch(f"{server}/text")
        result = await afetch(f"{server}/redirect?/text", LOOPBACK)
        assert result.text == "안녕 hello"
        with pytest.raises(BlockedAddressError):
            await afetch(f"{server}/redirect?http://10.0.0.1/", LOOPBACK)
        with pytest.raises(FetchError):
            await afetch(f"{server}/big-stream", NetworkPolicy(allow=("127.0.0.1",), max_bytes=100))

    asyncio.run(main())
