"""The network guard: every URL maru fetches on someone's behalf goes through here.

Why: a loader or an agent tool that fetches URLs taken from documents, prompts or model output is a
server-side request forgery waiting to happen (cloud metadata at 169.254.169.254, an admin panel on
localhost, a database on 10.x). The guard therefore

- accepts only ``http`` and ``https``;
- resolves the host and refuses it when *any* of its addresses is private, loopback, link-local,
  multicast, reserved, unspecified or site-local — also when such an address hides inside an
  IPv6 form (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible, 6to4, NAT64, Teredo) — unless the
  policy's allow-list names the host, the address or a network holding it;
- connects to the very address it vetted (no second DNS lookup, so a DNS-rebinding server cannot
  swap in a private address between the check and the connection), while the ``Host`` header and
  the TLS server name (SNI and certificate check) stay the URL's host name;
- follows redirects itself, vetting every hop, and enforces size, time and content-type limits.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from .._version import __version__
from ..errors import BlockedAddressError, FetchError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "FetchResult",
    "NetworkPolicy",
    "afetch",
    "check_url",
    "fetch",
    "is_blocked_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CONTENT_TYPES: tuple[str, ...] = (
    "text/html",
    "text/plain",
    "application/xhtml+xml",
    "application/pdf",
    "application/json",
    "text/markdown",
    "text/csv",
)
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPAT = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class NetworkPolicy:
    """What the guard lets through.

    ``allow`` lists host names (``"localhost"``, ``"intranet.example"``), IP addresses
    (``"127.0.0.1"``) or networks (``"10.0.0.0/8"``) that may be reached even though they are not
    public, each optionally scoped to one port (``"127.0.0.1:8080"``, ``"[::1]:8080"``,
    ``"localhost:8080"``: that port only). An entry for a host name trusts whatever that name
    resolves to. ``timeout_s`` bounds the whole fetch: connecting, every redirect, headers and
    body. ``allowed_content_types`` takes exact types and ``"type/*"`` wildcards.
    """

    allow: tuple[str, ...] = ()
    max_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 5
    allowed_content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    user_agent: str = f"maru/{__version__}"
    _hosts: frozenset[tuple[str, int | None]] = field(init=False, repr=False, compare=False)
    _networks: tuple[tuple[IPNetwork, int | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept a list or a single string for convenience; store a tuple so the policy stays hashable.
        allow = (self.allow,) if isinstance(self.allow, str) else tuple(self.allow)
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "allowed_content_types", tuple(self.allowed_content_types))
        hosts: set[tuple[str, int | None]] = set()
        networks: list[tuple[IPNetwork, int | None]] = []
        for entry in allow:
            text, port = _split_port(entry.strip())
            try:
                networks.append((ipaddress.ip_network(text, strict=False), port))
            except ValueError:
                hosts.add((_normal_host(text), port))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_networks", tuple(networks))

    def allows_host(self, host: str, port: int | None = None) -> bool:
        """Whether an entry names ``host`` (for ``port``; without one, only unscoped entries)."""
        name = _normal_host(host)
        return (name, None) in self._hosts or (port is not None and (name, port) in self._hosts)

    def allows_address(self, address: IPAddress, port: int | None = None) -> bool:
        """Whether an entry's address or network holds ``address`` (for ``port``, as above)."""
        candidates = [address, *_embedded_ipv4(address)]
        return any(
            a in net
            for a in candidates
            for net, scope in self._networks
            if a.version == net.version and scope in (None, port)
        )

    def allows_content_type(self, content_type: str) -> bool:
        main = content_type.split(";", 1)[0].strip().lower()
        for allowed in self.allowed_content_types:
            allowed = allowed.lower()
            if allowed in ("*", "*/*") or allowed == main:
                return True
            if allowed.endswith("/*") and main.startswith(allowed[:-1]):
                return True
        return False


# ============================================================================ address checks
_PORT_SCOPED = re.compile(r"^\[(?P<v6>[^\]]+)\]:(?P<p6>\d{1,5})$|^(?P<host>[^:\[\]]+):(?P<port>\d{1,5})$")


def _split_port(entry: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; ``"[::1]:8080"`` → ``("::1", 8080)``; an
    entry without a port (a bare IPv6 address included) → ``(entry, None)``."""
    match = _PORT_SCOPED.match(entry)
    if match is None:
        return entry.strip("[]"), None
    host = match.group("v6") or match.group("host")
    return host, int(match.group("p6") or match.group("port"))


def _with_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses carried inside an IPv6 address (mapped, compatible, 6to4, NAT64, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64 or (address in _V4_COMPAT and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_special(address: IPAddress) -> bool:
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or site_local
        or not address.is_global
    )


def is_blocked_address(address: str | IPAddress) -> bool:
    """Whether ``address`` is not a public unicast address (by itself or through an IPv4 address
    embedded in an IPv6 form). The allow-list is not consulted here."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    embedded = _embedded_ipv4(ip)
    if any(_is_special(v4) for v4 in embedded):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped is not None or ip in _NAT64):
        # Translation prefixes are legitimate ways to reach the embedded IPv4 host: judge that host.
        return False
    return _is_special(ip)


def _split_url(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedAddressError(
            f"{url!r} is not a valid URL ({exc}); give an http(s) URL"
        ) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedAddressError(
            f"{url!r}: the scheme {scheme or '(none)'!r} is not allowed; only http and https URLs "
            "can be fetched"
        )
    host = parts.hostname
    if not host:
        raise BlockedAddressError(
            f"{url!r} has no host name; give a full URL like https://example.com/"
        )
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise BlockedAddressError(f"{url!r}: the host name {host!r} is not valid ({exc})") from exc
    return scheme, ascii_host.lower(), port or (443 if scheme == "https" else 80)


def _resolve(host: str, port: int, timeout_s: float | None = None) -> list[IPAddress]:
    try:
        infos = _lookup(host, port, timeout_s)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}; check the URL's host name") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id such as fe80::1%eth0
        ip = ipaddress.ip_address(text)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"host {host!r} resolved to no address; check the URL's host name")
    return addresses


def _lookup(host: str, port: int, timeout_s: float | None) -> list[Any]:
    """``getaddrinfo``, given up after ``timeout_s``. The system resolver cannot be interrupted, so
    a name lookup (not an address literal) runs on a daemon thread that the fetch stops waiting for;
    that thread holds no socket of the fetch and ends when the resolver gives up."""
    if timeout_s is None or _is_address(host):
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    import threading

    outcome: list[Any] = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting caller below
            outcome.append(exc)

    worker = threading.Thread(target=lookup, name="maru-dns", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if not outcome:
        raise TimeoutError(f"the name lookup took longer than the {timeout_s:.1f} s left of the fetch")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_url(
    url: str, policy: NetworkPolicy | None = None, *, timeout_s: float | None = None
) -> list[str]:
    """Vet ``url`` and return the IP addresses it may be fetched from.

    Raises :class:`BlockedAddressError` for a non-http(s) URL or when any address the host resolves
    to is not public and not allow-listed, and :class:`FetchError` when the host does not resolve
    (within ``timeout_s``, when given: a fetch passes what is left of its deadline).
    """
    policy = policy or NetworkPolicy()
    _scheme, host, port = _split_url(url)
    addresses = _resolve(host, port, timeout_s)
    if policy.allows_host(host, port):
        return [str(a) for a in addresses]
    for address in addresses:
        if is_blocked_address(address) and not policy.allows_address(address, port):
            shown = (
                host if str(address) == _normal_host(host) else f"{host} (resolves to {address})"
            )
            raise BlockedAddressError(
                f"refused to fetch {url!r}: {shown} is a private, loopback, link-local, multicast "
                f"or reserved address. If this host is meant to be reached, allow it: "
                f"NetworkPolicy(allow=({_normal_host(host)!r},)) or NetworkPolicy(allow=({str(address)!r},)), "
                f"or only its port: NetworkPolicy(allow=({_with_port(str(address), port)!r},))"
            )
    return [str(a) for a in addresses]


# =============================================================================== fetching
@dataclass(frozen=True)
class FetchResult:
    """A fetched body. ``url`` is the final URL after redirects."""

    url: str
    status: int
    content_type: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower case (``text/html``)."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset the server declared, else one an HTML ``<meta>`` declares, else ``None``."""
        match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", self.content_type, re.I)
        if match is not None:
            return match.group(1)
        if self.media_type in ("text/html", "application/xhtml+xml"):
            meta = re.search(
                rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", self.content[:2048], re.I
            )
            return meta.group(1).decode("ascii", "replace") if meta else None
        return None

    @cached_property
    def text(self) -> str:
        """The body decoded with its charset, else UTF-8 (undecodable bytes replaced)."""
        charset = self.charset
        if charset:
            try:
                return self.content.decode(charset, errors="replace")
            except LookupError:
                pass
        return self.content.decode("utf-8", errors="replace")


class _Pins:
    """Host name → vetted addresses, shared by a fetch and the network backend it connects with."""

    def __init__(self) -> None:
        self._by_host: dict[str, list[str]] = {}

    def set(self, host: str, addresses: Sequence[str]) -> None:
        self._by_host[_normal_host(host)] = list(addresses)

    def get(self, host: str) -> list[str]:
        addresses = self._by_host.get(_normal_host(host))
        if not addresses:
            raise BlockedAddressError(
                f"refused to connect to {host!r}: it was not vetted by the guard"
            )
        return addresses


class _Deadline:
    """The moment a whole fetch must be over: connecting, every redirect hop, headers and body.

    httpx's timeouts apply to each read, so a server that sends a byte just before each read
    would time out (one byte of header every few seconds, a body byte just inside the read
    timeout) holds a fetch for as long as it likes. Every socket operation of a fetch is given at
    most the time left, and none starts once it is gone."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def bound(self, timeout: float | None, timeout_error: type[Exception]) -> float:
        """``timeout`` cut to the time left; ``timeout_error`` (an httpcore timeout) when none is."""
        left = self.left()
        if left <= 0:
            raise timeout_error(f"the fetch's {self.seconds} s deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """An httpcore network stream whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, inner: Any, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        data: bytes = self._inner.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        self._inner.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        import httpcore

        bound = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bound), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncDeadlineStream:
    """The async twin of :class:`_DeadlineStream`."""

    def __init__(self, inner: Any, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        data: bytes = await self._inner.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        await self._inner.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        import httpcore

        bound = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        inner = await self._inner.start_tls(ssl_context, server_hostname, bound)
        return _AsyncDeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend:
    """An httpcore network backend that connects to the vetted addresses of a host name instead of
    resolving it again, with every socket operation bounded by the fetch's deadline. TLS and the
    ``Host`` header are handled above this layer with the name."""

    def __init__(self, pins: _Pins, deadline: _Deadline) -> None:
        import httpcore

        self._pins = pins
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        import httpcore

        error: Exception | None = None
        for address in self._pins.get(host):
            try:
                bound = self._deadline.bound(timeout, httpcore.ConnectTimeout)
                stream = self._inner.connect_tcp(address, port, bound, local_address, socket_options)
                return _DeadlineStream(stream, self._deadline)
            except Exception as exc:  # try the next vetted address, like create_connection does
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        raise BlockedAddressError("the network guard does not connect to Unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _AsyncPinnedBackend:
    """The async twin of :class:`_PinnedBackend` (anyio: asyncio or trio)."""

    def __init__(self, pins: _Pins, deadline: _Deadline) -> None:
        import httpcore

        self._pins = pins
        self._deadline = deadline
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        import httpcore

        error: Exception | None = None
        for address in self._pins.get(host):
            try:
                bound = self._deadline.bound(timeout, httpcore.ConnectTimeout)
                stream = await self._inner.connect_tcp(address, port, bound, local_address, socket_options)
                return _AsyncDeadlineStream(stream, self._deadline)
            except Exception as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        raise BlockedAddressError("the network guard does not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _client(hop: _Hop) -> httpx.Client:
    import httpcore
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend; swap in one that is
    # pinned to the vetted addresses (same settings httpx uses, minus proxies and env lookups).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_PinnedBackend(hop.pins, hop.deadline),  # type: ignore[arg-type]
    )
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": hop.policy.user_agent},
    )


def _async_client(hop: _Hop) -> httpx.AsyncClient:
    import httpcore
    import httpx

    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_AsyncPinnedBackend(hop.pins, hop.deadline),  # type: ignore[arg-type]
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": hop.policy.user_agent},
    )


class _Hop:
    """Bookkeeping shared by :func:`fetch` and :func:`afetch`: vetting, deadlines, limits."""

    def __init__(self, url: str, policy: NetworkPolicy) -> None:
        self.policy = policy
        self.start_url = url
        self.url = url
        self.redirects = 0
        self.deadline = _Deadline(policy.timeout_s)
        self.pins = _Pins()

    def vet(self) -> None:
        addresses = check_url(self.url, self.policy, timeout_s=self.remaining())
        self.pins.set(_split_url(self.url)[1], addresses)

    def remaining(self) -> float:
        left = self.deadline.left()
        if left <= 0:
            raise self.timed_out()
        return left

    def timed_out(self) -> FetchError:
        return FetchError(
            f"fetching {self.start_url!r} timed out (limit {self.policy.timeout_s} s for the whole "
            "fetch, redirects included); raise NetworkPolicy(timeout_s=...) if the server is slow"
        )

    def next_url(self, response: httpx.Response) -> str | None:
        """The URL to go to next, or ``None`` when ``response`` is the final one."""
        if response.status_code not in _REDIRECT_CODES:
            return None
        location = response.headers.get("location")
        if not location:
            return None
        self.redirects += 1
        if self.redirects > self.policy.max_redirects:
            raise FetchError(
                f"fetching {self.start_url!r} was redirected more than {self.policy.max_redirects} "
                "times; raise NetworkPolicy(max_redirects=...) or fetch the final URL directly"
            )
        self.url = urljoin(self.url, location)
        return self.url

    def check_headers(self, response: httpx.Response, raise_for_status: bool) -> str:
        if raise_for_status and response.status_code >= 400:
            raise FetchError(
                f"{self.url!r} answered HTTP {response.status_code} {response.reason_phrase}; "
                "check the URL"
            )
        content_type = response.headers.get("content-type", "")
        if not self.policy.allows_content_type(content_type or "application/octet-stream"):
            raise FetchError(
                f"{self.url!r} is {content_type or 'of no declared content type'}, which the policy "
                f"does not accept ({', '.join(self.policy.allowed_content_types)}); add it to "
                "NetworkPolicy(allowed_content_types=...) to fetch it"
            )
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.policy.max_bytes:
            self.too_big(int(length))
        return content_type

    def too_big(self, size: int) -> None:
        raise FetchError(
            f"{self.url!r} is larger than the policy's limit of {self.policy.max_bytes} bytes "
            f"(at least {size}); raise NetworkPolicy(max_bytes=...) to fetch it"
        )

    def add(self, body: bytearray, chunk: bytes) -> None:
        body += chunk
        if len(body) > self.policy.max_bytes:
            self.too_big(len(body))
        self.remaining()

    def result(self, response: httpx.Response, content_type: str, body: bytearray) -> FetchResult:
        return FetchResult(
            url=self.url,
            status=response.status_code,
            content_type=content_type,
            content=bytes(body),
            headers=dict(response.headers),
        )

    def transport_error(self, exc: Exception) -> FetchError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return self.timed_out()
        return FetchError(f"fetching {self.url!r} failed: {exc}")


def fetch(
    url: str, policy: NetworkPolicy | None = None, *, raise_for_status: bool = True
) -> FetchResult:
    """GET ``url`` through the guard (see the module docstring) and return the body.

    Raises :class:`BlockedAddressError` when the URL or any redirect hop is refused and
    :class:`FetchError` for an HTTP error status (unless ``raise_for_status=False``), a body over
    ``max_bytes``, a content type not allowed, too many redirects or a timeout.
    """
    import httpx

    hop = _Hop(url, policy or NetworkPolicy())
    hop.vet()
    with _client(hop) as client:
        while True:
            try:
                request = client.build_request(
                    "GET", hop.url, timeout=httpx.Timeout(hop.remaining())
                )
                response = client.send(request, stream=True)
                try:
                    if hop.next_url(response) is not None:
                        hop.vet()
                        continue
                    content_type = hop.check_headers(response, raise_for_status)
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        hop.add(body, chunk)
                    return hop.result(response, content_type, body)
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                raise hop.transport_error(exc) from exc


async def afetch(
    url: str, policy: NetworkPolicy | None = None, *, raise_for_status: bool = True
) -> FetchResult:
    """The async twin of :func:`fetch` (DNS resolution for the check runs in a worker thread)."""
    import anyio.to_thread
    import httpx

    hop = _Hop(url, policy or NetworkPolicy())
    await anyio.to_thread.run_sync(hop.vet)
    async with _async_client(hop) as client:
        while True:
            try:
                request = client.build_request(
                    "GET", hop.url, timeout=httpx.Timeout(hop.remaining())
                )
                response = await client.send(request, stream=True)
                try:
                    if hop.next_url(response) is not None:
                        await anyio.to_thread.run_sync(hop.vet)
                        continue
                    content_type = hop.check_headers(response, raise_for_status)
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        hop.add(body, chunk)
                    return hop.result(response, content_type, body)
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise hop.transport_error(exc) from exc
