"""MCP (Model Context Protocol), both directions, with the official ``mcp`` SDK (the ``mcp`` extra).

- :func:`mcp_tools`: the tools of an MCP server (a command speaking stdio, or a streamable-HTTP
  URL vetted by the network guard) as maru tools, over one long-lived session per server.
- :func:`serve_stdio`: maru tools, or any runnable as one tool, served as an MCP server on
  stdin/stdout (what ``maru mcp serve module:object`` runs).

The SDK is imported inside the functions that use it, so ``import maru.mcp`` stays light.
"""

from __future__ import annotations

from .server import as_tools, serve_stdio
from .session import MCPServerError, MCPSession
from .tools import MCPTool, MCPToolset, mcp_tools

__all__ = ["MCPServerError", "MCPSession", "MCPTool", "MCPToolset", "as_tools", "mcp_tools", "serve_stdio"]
