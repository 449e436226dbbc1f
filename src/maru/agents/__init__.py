"""Agents with tools: typed tools, a tool-calling agent, a ReAct text agent, and guarded web tools."""

from __future__ import annotations

from typing import Any

from .. import _lazy
from .agent import AgentResult, AgentStep, ToolCallingAgent
from .approval import ApprovalError
from .journal import tool_call_key
from .react import ReActAgent, parse_react
from .tools import Tool, ToolTimeout, as_tool, tool

_LAZY = {
    "web_search": ".web",
    "web_fetch": ".web",
    "crawl": ".web",
    "WebPage": ".web",
    "SearchResult": ".web",
}

__all__ = [
    "AgentResult",
    "AgentStep",
    "ApprovalError",
    "ReActAgent",
    "Tool",
    "ToolCallingAgent",
    "ToolTimeout",
    "as_tool",
    "parse_react",
    "tool",
    "tool_call_key",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _LAZY, name)
