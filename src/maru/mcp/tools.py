"""The tools of an MCP server as maru tools: what an agent is handed.

    with mcp_tools("python -m mcp_server_time") as tools:
        agent = ToolCallingAgent(model, tools)

Each :class:`MCPTool` shows the model the server's own JSON schema and forwards a call over the
toolset's one :class:`~.session.MCPSession`. A tool the server reports as failed raises
:class:`~maru.errors.ToolCallError` with the server's text, so an agent hands it to the model as
an error message it can correct; a call past its time raises :class:`~maru.agents.ToolTimeout`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ..agents.tools import Tool, ToolTimeout
from ..errors import ToolCallError
from ..net.guard import NetworkPolicy
from .session import MCPSession

if TYPE_CHECKING:
    from mcp.types import CallToolResult
    from mcp.types import Tool as MCPToolSpec

__all__ = ["MCPTool", "MCPToolset", "mcp_tools"]


class _AnyArguments(BaseModel):
    """Arguments are checked by the server against its own schema; maru only keeps them a dict."""

    model_config = ConfigDict(extra="allow")


class MCPTool(Tool):
    """One tool of an MCP server. ``input_schema`` is the server's JSON schema, shown to the model
    as it is."""

    def __init__(self, session: MCPSession, spec: MCPToolSpec, *, name: str | None = None,
                 timeout_s: float | None = None) -> None:
        self.session = session
        self.remote_name = spec.name
        self.input_schema: dict[str, Any] = dict(spec.input_schema or {"type": "object", "properties": {}})
        super().__init__(
            self._call,
            name=name or spec.name,
            description=spec.description or f"{spec.name} (a tool of MCP server {session.name})",
            args_schema=_AnyArguments,
            timeout_s=None,  # the session bounds the call (and cancels it on the server's side)
        )
        self.call_timeout_s = timeout_s

    def to_openai_tool(self) -> dict[str, Any]:
        schema = {k: v for k, v in self.input_schema.items() if k not in ("title", "$schema")}
        schema.setdefault("properties", {})
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": schema}}

    def validate_args(self, raw: Any) -> dict[str, Any]:
        """A dict (or JSON text, or the one value of a one-parameter tool) holding every required
        argument; the server validates types."""
        properties = list(self.input_schema.get("properties", {}))
        is_json_object = isinstance(raw, dict) or (isinstance(raw, str) and raw.strip().startswith("{"))
        if len(properties) == 1 and not is_json_object:
            raw = {properties[0]: raw}
        args = super().validate_args(raw)
        missing = [key for key in self.input_schema.get("required", ()) if key not in args]
        if missing:
            raise ToolCallError(f"invalid arguments for {self.name}: missing {', '.join(missing)}")
        return args

    def _call(self, **args: Any) -> str:
        from mcp import MCPError

        try:
            result = self.session.call_tool(self.remote_name, args, self.call_timeout_s)
        except TimeoutError as exc:
            raise ToolTimeout(str(exc)) from None
        except MCPError as exc:  # the server refused the request (unknown tool, bad arguments)
            raise ToolCallError(f"{self.name} was refused by MCP server {self.session.name!r}: {exc.message}") from None
        text = result_text(result)
        if result.is_error:
            raise ToolCallError(f"{self.name} failed: {text}")
        return text


def result_text(result: CallToolResult) -> str:
    """What a tool call returned, as the text a model reads: its text parts joined; structured
    content (as JSON) when there is no text; other parts (images, resources) named."""
    import json

    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{block.type} content]")
    if not any(parts) and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


class MCPToolset(list[Tool]):
    """The tools of one server (a list, so it goes wherever tools go) and the session they share.
    Closing it (or leaving its ``with`` block) stops the session and the server process."""

    def __init__(self, session: MCPSession, tools: Sequence[Tool]) -> None:
        super().__init__(tools)
        self.session = session

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> MCPToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mcp_tools(
    server: str | Sequence[str] | MCPSession,
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    policy: NetworkPolicy | None = None,
    prefix: str = "",
    timeout_s: float = 30.0,
    startup_timeout_s: float = 30.0,
) -> MCPToolset:
    """Connect to an MCP server and return its tools as maru tools over one long-lived session.

    ``server``: a command line (``"python -m mcp_server_time"``, or a list of arguments) started
    as a subprocess speaking stdio (with ``env`` added to a minimal environment, in ``cwd``); an
    ``http(s)://`` URL of a streamable-HTTP server, vetted by the network guard under ``policy``;
    or an :class:`MCPSession` to share. ``prefix`` goes before every tool name (two servers with
    a tool of the same name). Raises :class:`~.session.MCPServerError` when the server does not
    start or answer.
    """
    session = server if isinstance(server, MCPSession) else MCPSession(
        server, env=env, cwd=cwd, policy=policy, timeout_s=timeout_s, startup_timeout_s=startup_timeout_s
    )
    try:
        specs = session.list_tools()
    except BaseException:
        session.close()
        raise
    tools = [MCPTool(session, spec, name=prefix + spec.name, timeout_s=timeout_s) for spec in specs]
    return MCPToolset(session, tools)
