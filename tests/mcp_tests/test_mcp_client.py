"""maru tools over real MCP servers from PyPI: ``mcp-server-time`` and ``mcp-server-git``.

One server process per module (the session is long-lived); the tests check that it stays one
process, that a killed server is restarted once, and that an agent drives the tools.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")
pytest.importorskip("mcp_server_time")

from maru.agents import ToolCallingAgent
from maru.errors import BlockedAddressError, ToolCallError
from maru.mcp import MCPServerError, MCPToolset, mcp_tools
from maru.messages import AIMessage, ToolCall, ToolMessage
from maru.models.scripted import ScriptedChatModel
from maru.net import NetworkPolicy

TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


def server_children(module: str) -> list[int]:
    """PIDs of this process's children whose command line runs ``module``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == str(os.getpid()) and module.encode() in cmdline:
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def time_tools() -> Iterator[MCPToolset]:
    with mcp_tools(TIME_SERVER, timeout_s=20) as tools:
        yield tools


def by_name(tools: MCPToolset) -> dict[str, object]:
    return {t.name: t for t in tools}


def test_the_servers_tools_become_maru_tools_with_its_schema(time_tools: MCPToolset) -> None:
    tools = by_name(time_tools)
    assert {"get_current_time", "convert_time"} <= set(tools)
    spec = tools["get_current_time"].to_openai_tool()  # type: ignore[attr-defined]
    assert spec["function"]["parameters"]["required"] == ["timezone"]
    assert "timezone" in spec["function"]["description"].lower()


def test_a_call_returns_the_servers_text(time_tools: MCPToolset) -> None:
    get_time = by_name(time_tools)["get_current_time"]
    answer = json.loads(get_time.invoke({"timezone": "Asia/Seoul"}))  # type: ignore[attr-defined]
    assert answer["timezone"] == "Asia/Seoul" and answer["datetime"].endswith("+09:00")
    assert json.loads(get_time.invoke('{"timezone": "UTC"}'))["datetime"].endswith("+00:00")  # type: ignore[attr-defined]


def test_one_session_and_one_process_serve_every_call(time_tools: MCPToolset) -> None:
    get_time = by_name(time_tools)["get_current_time"]
    before = server_children("mcp_server_time")
    for zone in ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo"):
        get_time.invoke({"timezone": zone})  # type: ignore[attr-defined]
    assert len(before) == 1 and server_children("mcp_server_time") == before
    assert time_tools.session.connects == 1


def test_async_calls_share_the_session(time_tools: MCPToolset) -> None:
    import asyncio

    get_time = by_name(time_tools)["get_current_time"]

    async def both() -> list[str]:
        return await asyncio.gather(*(get_time.ainvoke({"timezone": z}) for z in ("UTC", "Asia/Seoul")))  # type: ignore[attr-defined]

    answers = asyncio.run(both())
    assert [json.loads(a)["timezone"] for a in answers] == ["UTC", "Asia/Seoul"]
    assert time_tools.session.connects == 1


def test_a_tool_error_is_a_tool_call_error_the_model_can_read(time_tools: MCPToolset) -> None:
    get_time = by_name(time_tools)["get_current_time"]
    with pytest.raises(ToolCallError, match="Nowhere/Atlantis"):
        get_time.invoke({"timezone": "Nowhere/Atlantis"})  # type: ignore[attr-defined]
    with pytest.raises(ToolCallError, match="missing timezone"):
        get_time.invoke({})  # type: ignore[attr-defined]
    message = get_time.run_call(ToolCall("get_current_time", {"timezone": "Nowhere/Atlantis"}, id="c1"))  # type: ignore[attr-defined]
    assert message.status == "error" and "Invalid timezone" in message.content


def test_an_agent_drives_an_mcp_tool(time_tools: MCPToolset) -> None:
    ask = AIMessage("", tool_calls=[ToolCall("get_current_time", {"timezone": "Asia/Seoul"}, id="c0")])
    model = ScriptedChatModel([ask, lambda messages: "Seoul: " + json.loads(messages[-1].content)["datetime"]])
    result = ToolCallingAgent(model, time_tools).invoke("What time is it in Seoul?")
    tool_message = next(m for m in result.messages if isinstance(m, ToolMessage))
    assert tool_message.status == "success" and json.loads(tool_message.content)["timezone"] == "Asia/Seoul"
    assert result.output.startswith("Seoul: ") and result.output.endswith("+09:00")
    shown = {t["function"]["name"] for t in model.calls[0].params["tools"]}
    assert {"get_current_time", "convert_time"} <= shown


def started_by(block_start: set[int]) -> list[int]:
    return [pid for pid in server_children("mcp_server_time") if pid not in block_start]


def test_a_killed_server_is_restarted_once() -> None:
    running = set(server_children("mcp_server_time"))
    with mcp_tools(TIME_SERVER) as tools:
        get_time = by_name(tools)["get_current_time"]
        [first] = started_by(running)
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)
        assert json.loads(get_time.invoke({"timezone": "UTC"}))["timezone"] == "UTC"  # type: ignore[attr-defined]
        assert tools.session.connects == 2
        [second] = started_by(running)
        assert second != first
    with pytest.raises(MCPServerError, match="closed"):
        get_time.invoke({"timezone": "UTC"})  # type: ignore[attr-defined]


def test_closing_stops_the_server_process() -> None:
    running = set(server_children("mcp_server_time"))
    tools = mcp_tools(TIME_SERVER)
    assert len(started_by(running)) == 1
    tools.close()
    assert started_by(running) == []


def test_a_server_that_does_not_start_says_so_with_its_stderr() -> None:
    with pytest.raises(MCPServerError, match="could not start MCP server 'no-such-mcp-server-xyz'"):
        mcp_tools(["no-such-mcp-server-xyz"])
    crash = [sys.executable, "-c", "import sys; print('bad config: no token', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(MCPServerError, match="(?s)could not start.*bad config: no token"):
        mcp_tools(crash)


def test_a_server_that_never_answers_times_out() -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(30)"]
    started = time.monotonic()
    with pytest.raises(MCPServerError, match="did not finish its handshake within 1 s"):
        mcp_tools(silent, startup_timeout_s=1)
    assert time.monotonic() - started < 10


def test_remote_urls_go_through_the_network_guard() -> None:
    started = time.monotonic()
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        mcp_tools("http://127.0.0.1:9/mcp")
    with pytest.raises(BlockedAddressError, match="169.254.169.254"):
        mcp_tools("http://169.254.169.254/mcp", policy=NetworkPolicy(allow=("127.0.0.1",)))
    assert time.monotonic() - started < 5
    # Allowed, the same URL gets past the guard and fails only to connect (nothing listens on port 9).
    with pytest.raises(MCPServerError, match="could not start MCP server 'http://127.0.0.1:9/mcp'"):
        mcp_tools("http://127.0.0.1:9/mcp", policy=NetworkPolicy(allow=("127.0.0.1",)), startup_timeout_s=10)


# ----------------------------------------------------------------------------- mcp-server-git
@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=maru", "-c", "user.email=maru@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "notes.txt").write_text("first\n")
    subprocess.run([*git, "add", "notes.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add the notes"], check=True)
    (repo / "draft.txt").write_text("not yet added\n")
    return repo


def test_git_status_and_log_on_a_scratch_repository(scratch_repo: Path) -> None:
    pytest.importorskip("mcp_server_git")
    server = [sys.executable, "-m", "mcp_server_git", "--repository", str(scratch_repo)]
    with mcp_tools(server, prefix="git.") as tools:
        git = by_name(tools)
        assert {"git.git_status", "git.git_log"} <= set(git)
        status = git["git.git_status"].invoke({"repo_path": str(scratch_repo)})  # type: ignore[attr-defined]
        assert "draft.txt" in status and "Untracked" in status
        log = git["git.git_log"].invoke({"repo_path": str(scratch_repo), "max_count": 5})  # type: ignore[attr-defined]
        assert "Add the notes" in log and "maru" in log
        assert tools.session.connects == 1 and len(server_children("mcp_server_git")) == 1


# ----------------------------------------------------------------------------- the local model
@pytest.mark.real_model
def test_the_local_model_calls_an_mcp_tool(time_tools: MCPToolset, local_model: object) -> None:
    model = local_model(max_tokens=96, n_ctx=2048)  # type: ignore[operator]
    agent = ToolCallingAgent(model, time_tools, first_tool_choice="get_current_time", max_steps=2)
    result = agent.invoke("What time is it in Seoul (timezone Asia/Seoul) right now?")
    calls = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert calls and calls[0].name == "get_current_time"
    if calls[0].status == "success":
        assert "datetime" in json.loads(calls[0].content)
    else:  # a small model may misname the zone: the server's error still reached it as text
        assert "timezone" in calls[0].content.lower()


def test_importing_maru_mcp_and_the_cli_leaves_the_sdk_out() -> None:
    code = "import sys, maru.mcp, maru.cli; print(sorted(m for m in ('mcp', 'anyio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_a_session_left_open_is_closed_at_exit() -> None:
    script = (
        "import os, sys; from maru.mcp import mcp_tools; "
        f"tools = mcp_tools({TIME_SERVER!r}); "
        "print([int(p) for p in os.listdir('/proc') if p.isdigit() and "
        "open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1] == str(os.getpid())])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    [server] = json.loads(out.stdout)
    time.sleep(0.2)
    assert not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]


def test_a_failing_servers_stderr_is_quoted_without_its_secrets() -> None:
    leaky = "sk-proj-" + "Q7w9E2r4T6y8U1i3O5p7A9s2D4f6" * 2
    crash = [sys.executable, "-c", f"import sys; print('auth failed for key {leaky}', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(MCPServerError, match="(?s)auth failed for key") as failure:
        mcp_tools(crash)
    assert leaky not in str(failure.value)
