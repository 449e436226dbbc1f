"""Loopback HTTP servers that misbehave on purpose, for the guard's tests and bench/attacks_net.py:
one drips its header bytes, one drips its body. Each connection is served by its own thread,
every wait is bounded, and the server notes how long each client kept its connection open."""

from __future__ import annotations

import select
import socket
import threading
import time
from types import TracebackType

__all__ = ["DripServer"]


class DripServer:
    """``mode="headers"``: a status line, then one byte of a never-ending header every
    ``interval`` seconds. ``mode="body"``: complete headers announcing a large body, then one
    body byte every ``interval`` seconds. No connection is served longer than ``cap_s``."""

    def __init__(self, mode: str, interval: float = 0.1, cap_s: float = 20.0) -> None:
        if mode not in ("headers", "body"):
            raise ValueError(f"mode is 'headers' or 'body', not {mode!r}")
        self.mode = mode
        self.interval = interval
        self.cap_s = cap_s
        self.held_s: list[float] = []  # per connection: seconds until the client hung up
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DripServer:
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(self.cap_s + 5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        start = time.monotonic()
        with conn:
            if not _read_request(conn):
                return
            head = b"HTTP/1.1 200 OK\r\nX-Drip: " if self.mode == "headers" else (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"
            )
            try:
                conn.sendall(head)
                while not self._stop.is_set() and time.monotonic() - start < self.cap_s:
                    if _hung_up(conn, self.interval):
                        break
                    conn.sendall(b"a")
                else:
                    return
            except OSError:
                pass
            self.held_s.append(time.monotonic() - start)


def _hung_up(conn: socket.socket, wait_s: float) -> bool:
    """Whether the client closed its end within ``wait_s`` (it sends nothing after its request)."""
    readable, _, _ = select.select([conn], [], [], wait_s)
    if not readable:
        return False
    try:
        return conn.recv(1) == b""
    except OSError:
        return True


def _read_request(conn: socket.socket) -> bool:
    conn.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
    except OSError:
        return False
    return True
