"""One deadline over a whole fetch: connect, headers and body, sync and async, against loopback
servers that drip bytes to stay just inside every per-read timeout. The connection is closed when
the deadline passes (the server sees the client hang up), and the allow-list can be scoped to a
port."""

from __future__ import annotations

import asyncio
import time

import pytest

from maru.errors import BlockedAddressError, FetchError
from maru.net import NetworkPolicy, afetch, fetch

from .hostile import DripServer

CAP = 1.0


def policy_for(server: DripServer) -> NetworkPolicy:
    return NetworkPolicy(allow=("127.0.0.1",), timeout_s=CAP)


def timed(call: object) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def hung_up_soon(server: DripServer) -> bool:
    deadline = time.monotonic() + 2
    while not server.held_s and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(server.held_s) and server.held_s[0] < CAP + 1.0


# A byte just inside each read's timeout: per-read timeouts never fire; only a total deadline does.
DRIPS = [("headers", 0.1), ("body", 0.9)]


@pytest.mark.parametrize(("mode", "interval"), DRIPS)
def test_fetch_ends_at_its_deadline_however_the_bytes_drip(mode: str, interval: float) -> None:
    with DripServer(mode, interval) as server:
        took, error = timed(lambda: fetch(server.url, policy_for(server)))
        assert isinstance(error, FetchError) and "timed out" in str(error), error
        assert took < CAP + 0.5, took
        assert hung_up_soon(server), server.held_s


@pytest.mark.parametrize(("mode", "interval"), DRIPS)
def test_afetch_ends_at_its_deadline_however_the_bytes_drip(mode: str, interval: float) -> None:
    with DripServer(mode, interval) as server:
        took, error = timed(lambda: asyncio.run(afetch(server.url, policy_for(server))))
        assert isinstance(error, FetchError)
        assert took < CAP + 0.5, took
        assert hung_up_soon(server), server.held_s


def test_the_web_tool_ends_with_its_fetch_and_leaves_no_thread_or_socket() -> None:
    import threading

    from maru.agents.web import make_web_tools

    with DripServer("headers") as server:
        before = threading.active_count()
        tools = {t.name: t for t in make_web_tools(NetworkPolicy(allow=("127.0.0.1",)), timeout_s=CAP)}
        took, _ = timed(lambda: tools["web_fetch"].invoke({"url": server.url}))
        assert took < CAP + 0.5, took
        assert hung_up_soon(server), server.held_s
        time.sleep(0.2)
        assert threading.active_count() <= before


# ----------------------------------------------------------------------------- port scope
def test_an_allow_entry_with_a_port_allows_only_that_port() -> None:
    with DripServer("body") as allowed, DripServer("body") as other:
        policy = NetworkPolicy(allow=(f"127.0.0.1:{allowed.port}",), timeout_s=0.3)
        with pytest.raises(FetchError):  # let through (then cut off by its deadline)
            fetch(allowed.url, policy)
        with pytest.raises(BlockedAddressError, match="refused"):
            fetch(other.url, policy)


@pytest.mark.parametrize(
    ("entry", "host", "port", "allowed"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8081, False),
        ("localhost:8080", "localhost", 8080, True),
        ("localhost:8080", "localhost", 80, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 443, False),
        ("10.0.0.0/8:8080", "10.1.2.3", 8080, True),
        ("10.0.0.0/8:8080", "10.1.2.3", 22, False),
        ("::1", "::1", 443, True),  # a bare IPv6 address is not a host:port
        ("127.0.0.1", "127.0.0.1", 22, True),
    ],
)
def test_port_scope_in_allow_entries(entry: str, host: str, port: int, allowed: bool) -> None:
    import ipaddress

    policy = NetworkPolicy(allow=(entry,))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        assert policy.allows_host(host, port) is allowed
    else:
        assert policy.allows_address(address, port) is allowed


@pytest.fixture
def slow_resolver(monkeypatch):
    """A name server that takes 3 s to answer for ``slow.example`` (other names resolve as usual)."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "slow.example":
            time.sleep(3)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_slow_name_lookup_counts_against_the_deadline(slow_resolver):
    took, error = timed(lambda: fetch("http://slow.example/", NetworkPolicy(timeout_s=CAP)))
    assert isinstance(error, FetchError) and "slow.example" in str(error)
    assert took < CAP + 0.5


def test_a_slow_name_lookup_counts_against_the_async_deadline(slow_resolver):
    took, error = timed(lambda: asyncio.run(afetch("http://slow.example/", NetworkPolicy(timeout_s=CAP))))
    assert isinstance(error, FetchError)
    assert took < CAP + 0.5
