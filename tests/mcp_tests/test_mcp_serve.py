"""``maru mcp serve module:object`` answers the official SDK's own client over stdio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from maru.agents.tools import ToolTimeout
from maru.errors import ToolCallError
from maru.mcp import mcp_tools

TOOLBOX = '''
import asyncio

from maru.agents import tool
from maru.core import runnable


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


@tool
async def wait(seconds: float) -> str:
    """Wait a while, then say so."""
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


def shout(text):
    """Upper-case a text."""
    return text.upper() + "!"


tools = [add, divide, wait]
chain = runnable(shout, name="shout")
answer = 42
'''


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toolbox")
    (folder / "toolbox.py").write_text(textwrap.dedent(TOOLBOX), encoding="utf-8")
    return folder


def serve_command(target: str) -> list[str]:
    return [sys.executable, "-m", "maru.cli", "mcp", "serve", target]


def test_the_sdk_client_lists_and_calls_the_served_tools(toolbox: Path) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    async def session() -> tuple[dict[str, dict], object, object, object]:
        params = StdioServerParameters(command=sys.executable, args=serve_command("toolbox:tools")[1:], cwd=toolbox)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            info = await client.initialize()
            listed = {t.name: t.input_schema for t in (await client.list_tools()).tools}
            added = await client.call_tool("add", {"a": 2, "b": 40})
            failed = await client.call_tool("divide", {"a": 1, "b": 0})
            bad = await client.call_tool("add", {"a": "two"})
            return listed, (info.server_info.name, added), failed, bad

    listed, (name, added), failed, bad = asyncio.run(session())
    assert name == "maru"
    assert set(listed) == {"add", "divide", "wait"}
    assert listed["add"]["required"] == ["a", "b"] and listed["add"]["properties"]["a"]["type"] == "integer"
    assert not added.is_error and added.content[0].text == "42"  # type: ignore[attr-defined]
    assert failed.is_error and "ZeroDivisionError" in failed.content[0].text  # type: ignore[attr-defined]
    assert bad.is_error and "invalid arguments for add" in bad.content[0].text  # type: ignore[attr-defined]


def test_a_runnable_is_served_as_one_tool_taking_its_input(toolbox: Path) -> None:
    with mcp_tools(serve_command("toolbox:chain"), cwd=toolbox) as tools:
        [shout] = tools
        assert shout.name == "shout" and shout.description == "Upper-case a text."
        assert shout.invoke({"input": "hello"}) == "HELLO!"
        assert shout.invoke("again") == "AGAIN!"  # the one argument, given bare


def test_a_slow_tool_times_out_and_the_session_goes_on(toolbox: Path) -> None:
    with mcp_tools(serve_command("toolbox:tools"), cwd=toolbox, timeout_s=0.5) as tools:
        by_name = {t.name: t for t in tools}
        started = time.monotonic()
        with pytest.raises(ToolTimeout, match="within 0.5 s"):
            by_name["wait"].invoke({"seconds": 5})
        assert time.monotonic() - started < 3
        assert by_name["add"].invoke({"a": 1, "b": 2}) == "3"
        with pytest.raises(ToolCallError, match="ZeroDivisionError"):
            by_name["divide"].invoke({"a": 1, "b": 0})
        assert json.loads(by_name["divide"].invoke({"a": 1, "b": 4})) == 0.25
        assert tools.session.connects == 1


def test_a_bad_target_is_one_message(toolbox: Path) -> None:
    for target, message in (("toolbox:nothing", "has no attribute 'nothing'"), ("toolbox:answer", "cannot serve a int")):
        proc = subprocess.run(
            serve_command(target), cwd=toolbox, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_without_the_sdk_the_command_names_the_extra(toolbox: Path) -> None:
    hide = "import sys; sys.modules['mcp'] = None; sys.argv = ['maru', 'mcp', 'serve', 'toolbox:tools']; from maru.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", hide], cwd=toolbox, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2, proc.stderr
    assert 'maru mcp serve needs the "mcp" extra' in proc.stderr and 'pip install "maru[mcp]"' in proc.stderr

