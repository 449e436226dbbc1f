"""One long-lived session with one MCP server, usable from sync and async code.

Why one session, not one per call: a stateful server (a browser, a database connection, a git
checkout) loses its state when each call opens and closes its own connection, and starting a
server process per call costs a second. The session runs on a private event loop thread
(:mod:`._loop`); every call is submitted there. When the connection breaks (the server process
died, the HTTP stream dropped), the call reconnects once and retries; a second failure raises
:class:`MCPServerError`.

A remote server (an ``http(s)://`` URL) is vetted by the network guard before every connection:
private, loopback and link-local hosts are refused unless the :class:`~maru.net.NetworkPolicy`
allows them. The guard checks the host's addresses; the SDK's HTTP client then connects by name.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import shlex
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import MaruError
from ..net.guard import NetworkPolicy, check_url
from ._loop import LoopThread

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult
    from mcp.types import Tool as MCPToolSpec

__all__ = ["MCPServerError", "MCPSession"]

_CLOSE_WAIT_S = 5.0
_CONNECTION_CLOSED = -32000  # the JSON-RPC code the SDK raises when the connection went away


class MCPServerError(MaruError, ConnectionError):
    """An MCP server could not be started or reached, or its connection broke and reconnecting
    once did not help. The message names the server and, for a local one, ends with its stderr;
    it is redacted, since a command line or a failing server's output may hold a credential."""

    def __init__(self, message: str) -> None:
        from ..redact import redact_text

        super().__init__(redact_text(message))


class MCPSession:
    """A connection to one MCP server: a command line (``"python -m mcp_server_time"`` or an
    argument list) started as a subprocess speaking stdio, or a streamable-HTTP URL.

    Connects on first use; :meth:`close` (or leaving a ``with`` block, or interpreter exit) stops
    it. ``timeout_s`` bounds each call, ``startup_timeout_s`` the start and handshake.
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        policy: NetworkPolicy | None = None,
        timeout_s: float = 30.0,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.url = server if isinstance(server, str) and _is_url(server) else None
        self.argv = [] if self.url else _argv(server)
        self.env, self.cwd, self.policy = env, cwd, policy or NetworkPolicy()
        self.timeout_s, self.startup_timeout_s = timeout_s, startup_timeout_s
        self.connects = 0
        """How many times a connection was opened (1 while the first one lives)."""
        self._thread = LoopThread(f"maru-mcp-{self.name}")
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[ClientSession] | None = None
        self._stderr: TextIO | None = None
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @property
    def name(self) -> str:
        return self.url or shlex.join(self.argv)

    # ------------------------------------------------------------------ public, sync
    def list_tools(self) -> list[MCPToolSpec]:
        """The server's tools (every page)."""
        return self._run(self._alist_tools(), self.startup_timeout_s + self.timeout_s)

    def call_tool(self, name: str, arguments: dict[str, Any], timeout_s: float | None = None) -> CallToolResult:
        """Call one tool; :class:`TimeoutError` past ``timeout_s`` (default: the session's)."""
        timeout = timeout_s or self.timeout_s
        return self._run(self._acall_tool(name, arguments, timeout), self.startup_timeout_s + timeout)

    def close(self) -> None:
        """Stop the session (and the server process); safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if self._runner is not None:
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                self._thread.submit(self._disconnect()).result(_CLOSE_WAIT_S)
        self._thread.stop()
        if self._stderr is not None:
            self._stderr.close()

    def __enter__(self) -> MCPSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MCPSession({self.name!r})"

    # ------------------------------------------------------------------ on the session's loop
    def _run(self, coro: Any, wait_s: float) -> Any:
        if self._closed:
            coro.close()
            raise MCPServerError(f"the session with MCP server {self.name!r} is closed")
        future = self._thread.submit(coro)
        try:
            return future.result(wait_s + 1.0)
        except concurrent.futures.TimeoutError:
            if future.done():  # the call's own timeout (the same class since Python 3.11)
                raise
            future.cancel()
            raise TimeoutError(f"MCP server {self.name!r} did not answer within {wait_s:g} s") from None

    async def _alist_tools(self) -> list[MCPToolSpec]:
        async def pages(session: ClientSession) -> list[MCPToolSpec]:
            import mcp.types as types

            tools: list[MCPToolSpec] = []
            cursor: str | None = None
            while True:
                params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                result = await session.list_tools(params=params)
                tools.extend(result.tools)
                cursor = result.next_cursor
                if not cursor:
                    return tools

        return await self._with_reconnect(pages, self.timeout_s)

    async def _acall_tool(self, name: str, arguments: dict[str, Any], timeout_s: float) -> CallToolResult:
        async def call(session: ClientSession) -> CallToolResult:
            return await session.call_tool(name, arguments)

        return await self._with_reconnect(call, timeout_s)

    async def _with_reconnect(self, request: Any, timeout_s: float) -> Any:
        """``request(session)`` within ``timeout_s``; on a broken connection, once more on a new one."""
        for attempt in (1, 2):
            session = await self._connected()
            try:
                return await _bounded(request(session), timeout_s, self.name)
            except Exception as exc:
                if not self._broken(exc):
                    raise
                await self._disconnect()
                if attempt == 2:
                    raise MCPServerError(
                        f"the connection to MCP server {self.name!r} broke and reconnecting did not help: "
                        f"{type(exc).__name__}: {exc}{self._stderr_tail()}"
                    ) from exc
        raise AssertionError("unreachable")

    def _broken(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (not an error the server answered with)."""
        import anyio
        from mcp import MCPError

        if self._runner is None or self._runner.done():
            return True
        if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
            return True
        if isinstance(exc, MCPError):
            return exc.code == _CONNECTION_CLOSED
        return isinstance(exc, ConnectionError | OSError) and not isinstance(exc, TimeoutError)

    async def _connected(self) -> ClientSession:
        if self._session is not None and self._runner is not None and not self._runner.done():
            return self._session
        await self._disconnect()
        if self.url is not None:
            check_url(self.url, self.policy)  # before every connection: DNS may have changed
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop, self._ready = asyncio.Event(), ready
        self._runner = asyncio.create_task(self._hold(ready, self._stop))
        try:
            self._session = await asyncio.wait_for(asyncio.shield(ready), self.startup_timeout_s)
        except TimeoutError:
            ready.cancel()  # the handshake is abandoned: _disconnect cancels it rather than waits
            await self._disconnect()
            raise MCPServerError(
                f"MCP server {self.name!r} did not finish its handshake within "
                f"{self.startup_timeout_s:g} s{self._stderr_tail()}"
            ) from None
        except MCPServerError:
            raise
        except Exception as exc:
            await self._disconnect()
            exc = _innermost(exc)
            raise MCPServerError(
                f"could not start MCP server {self.name!r}: {type(exc).__name__}: {exc}{self._stderr_tail()}"
                "\nCheck the command (or URL) by running it yourself."
            ) from exc
        self.connects += 1
        return self._session

    async def _hold(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """Open the transport and the session, hand the session out, keep both open until ``stop``
        (the SDK's context managers must be left by the task that entered them)."""
        from mcp import ClientSession

        try:
            async with self._transport() as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller waiting on ready
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else MCPServerError(str(exc)))
            if not isinstance(exc, Exception):
                raise

    def _transport(self) -> Any:
        if self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            return streamable_http_client(self.url)
        from mcp import StdioServerParameters, stdio_client

        if self._stderr is None:
            # Kept for the session's life: a failed start quotes its tail. Closed by close().
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        params = StdioServerParameters(
            command=self.argv[0], args=self.argv[1:], env=self.env, cwd=Path(self.cwd) if self.cwd else None
        )
        return stdio_client(params, errlog=self._stderr)

    async def _disconnect(self) -> None:
        runner, stop, ready = self._runner, self._stop, self._ready
        self._runner = self._stop = self._session = self._ready = None
        if runner is None or stop is None:
            return
        stop.set()
        if ready is None or not ready.done() or ready.cancelled():
            runner.cancel()  # still in the handshake, which the stop event cannot interrupt
        with contextlib.suppress(BaseException):  # a dead connection may end any way it likes
            await asyncio.wait_for(runner, _CLOSE_WAIT_S)

    def _stderr_tail(self, chars: int = 1500) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()
        except (OSError, ValueError):
            return ""
        text = text.strip()[-chars:]
        return f"\n--- the server's stderr ---\n{text}" if text else ""


async def _bounded(coro: Any, timeout_s: float, server: str) -> Any:
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        raise TimeoutError(f"MCP server {server!r} did not answer within {timeout_s:g} s") from None


def _innermost(exc: Exception) -> Exception:
    """The first leaf of an exception group (what the SDK's task groups wrap failures in)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions and isinstance(exc.exceptions[0], Exception):
        exc = exc.exceptions[0]
    return exc


def _is_url(server: str) -> bool:
    return server.startswith(("http://", "https://"))


def _argv(server: str | Sequence[str]) -> list[str]:
    argv = shlex.split(server) if isinstance(server, str) else [str(part) for part in server]
    if not argv:
        raise ValueError("an MCP server is a command line or an http(s):// URL; got nothing")
    return argv
