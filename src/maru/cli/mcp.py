"""``maru mcp serve module:object``: maru tools, or any runnable, as an MCP server on stdio, for
an MCP client (Claude Desktop, an IDE, another agent) to start as a subprocess."""

from __future__ import annotations

from typing import Annotated

import typer

from ._extras import needs_extra
from ._shared import command_group, fail

mcp_app = command_group("mcp", help="MCP (Model Context Protocol): serve maru tools to MCP clients.")


@mcp_app.command("serve")
@needs_extra("mcp", "maru mcp serve")
def serve(
    target: Annotated[
        str,
        typer.Argument(help="What to serve, as module:object: a tool, a typed function, a runnable, or a list of them."),
    ],
    name: Annotated[str, typer.Option("--name", help="The server name MCP clients see.")] = "maru",
) -> None:
    """Serve tools over MCP on stdin/stdout (a runnable becomes one tool taking its input)."""
    import mcp  # noqa: F401 - a missing extra is reported before the target is imported

    from ..errors import TargetError
    from ..mcp import as_tools, serve_stdio
    from ..serve.target import load_object

    try:
        tools = as_tools(load_object(target))
    except TargetError as exc:
        fail(str(exc), exc.hint)
    except TypeError as exc:
        fail(f"{target}: {exc}")
    serve_stdio(tools, name)
