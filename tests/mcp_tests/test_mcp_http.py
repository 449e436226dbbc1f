"""``mcp_tools`` over streamable HTTP: a real SDK server under uvicorn on loopback, reached only
once the network guard's policy allows it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("mcp")
pytest.importorskip("uvicorn")

from maru.errors import BlockedAddressError
from maru.mcp import mcp_tools
from maru.net import NetworkPolicy

SERVER = '''
import sys

import uvicorn

from maru.agents import tool
from maru.mcp.server import build_server


@tool
def echo(text: str) -> str:
    """Say a text back."""
    return "echo: " + text


uvicorn.run(build_server([echo]).streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the HTTP MCP server did not start within 30 s")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def test_a_loopback_server_is_refused_until_the_policy_allows_it(http_server: str) -> None:
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        mcp_tools(http_server)
    port = http_server.split(":")[2].split("/")[0]
    with mcp_tools(http_server, policy=NetworkPolicy(allow=(f"127.0.0.1:{port}",))) as tools:
        [echo] = tools
        assert echo.invoke({"text": "hi"}) == "echo: hi"
        assert echo.invoke("again") == "echo: again"
        assert tools.session.connects == 1
