"""maru tools, or any runnable, served as an MCP server on stdin/stdout.

What ``maru mcp serve module:object`` runs. Each tool is listed with the JSON schema a model
sees in maru (:meth:`~maru.agents.Tool.to_openai_tool`) and called through
:meth:`~maru.agents.Tool.arun_call`, so a bad argument or an exception in the tool comes back to
the client as an error result it can read, never as a broken connection. A runnable that is not a
tool becomes one tool whose single argument ``input`` is what its ``invoke`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .._version import __version__
from ..agents.tools import Tool, as_tool
from ..core.runnable import Runnable
from ..messages import ToolCall

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

__all__ = ["as_tools", "build_server", "runnable_tool", "serve_stdio"]


class _RunnableInput(BaseModel):
    input: Any = Field(description="The input of the runnable, as its invoke() takes it.")


def runnable_tool(step: Runnable[Any, Any], name: str | None = None) -> Tool:
    """``step`` as one tool taking its input."""

    async def run(input: Any) -> Any:
        return await step.ainvoke(input)

    doc = getattr(getattr(step, "fn", None), "__doc__", None)  # a function made a step: its own docstring
    description = (doc or "").strip().split("\n\n", 1)[0] or f"Run {step.name} on its input."
    return Tool(run, name=name or step.name, description=description, args_schema=_RunnableInput)


def as_tools(obj: Any) -> list[Tool]:
    """What ``maru mcp serve`` can serve, as tools: a :class:`~maru.agents.Tool`, a typed function,
    a runnable (one tool taking its input), or a list of these."""
    if isinstance(obj, Tool):
        return [obj]
    if isinstance(obj, Runnable):
        return [runnable_tool(obj)]
    if callable(obj):
        return [as_tool(obj)]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes | dict):
        tools = [tool for item in obj for tool in as_tools(item)]
        if tools:
            return tools
    raise TypeError(
        f"cannot serve a {type(obj).__name__} over MCP: give a tool, a typed function, a runnable, "
        "or a list of these"
    )


def build_server(tools: Iterable[Tool], name: str = "maru") -> Server[Any]:
    """A low-level MCP server that lists ``tools`` and runs their calls."""
    import mcp.types as types
    from mcp.server.lowlevel import Server

    by_name = {tool.name: tool for tool in tools}
    if not by_name:
        raise ValueError("an MCP server needs at least one tool")
    listed = [
        types.Tool(name=t.name, description=t.description, input_schema=t.to_openai_tool()["function"]["parameters"])
        for t in by_name.values()
    ]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            return _result(f"Error: no tool {params.name!r}; the tools are {', '.join(by_name)}", error=True)
        message = await tool.arun_call(ToolCall(params.name, dict(params.arguments or {}), id="mcp"))
        return _result(str(message.content), error=message.status == "error")

    return Server(name, version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def _result(text: str, *, error: bool) -> Any:
    import mcp.types as types

    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


def serve_stdio(obj: Any, name: str = "maru") -> None:
    """Serve ``obj`` (see :func:`as_tools`) on stdin/stdout until the client closes them."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(as_tools(obj), name)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
