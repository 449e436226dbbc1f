"""Tools: typed functions a model can call.

    @tool
    def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"Current weather in a city.\"\"\"

The signature and docstring become a pydantic model (to validate the model's arguments) and the JSON
schema the model sees. A tool is a runnable (``kind="tool"``), so it traces and batches like any
step. :meth:`Tool.run_call` is what agents use: it never raises for a bad call — wrong arguments, an
exception in the tool or a timeout come back as an error :class:`~maru.messages.ToolMessage` the
model can read and correct.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import Callable
from typing import Any, overload

from ..core.config import RunConfig
from ..core.runnable import Runnable
from ..errors import ToolCallError
from ..messages import ToolCall, ToolMessage
from ..models.tools_schema import args_model, function_description

__all__ = ["Tool", "ToolTimeout", "as_tool", "tool"]


class ToolTimeout(TimeoutError):
    """A tool ran past its ``timeout_s``."""


class Tool(Runnable[Any, Any]):
    """A named, described, validated callable. Input: a dict of arguments (or a JSON string, or a
    single value for one-parameter tools)."""

    kind = "tool"
    io_bound = True

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        args_schema: type[Any] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a tool wraps a function, got {type(fn).__name__}")
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self._name = name or getattr(fn, "__name__", type(fn).__name__)
        self.description = description if description is not None else function_description(fn)
        if not self.description:
            raise ToolCallError(
                f"tool {self._name!r} has no description: add a docstring or pass description=..."
            )
        self.args_schema = args_schema or args_model(fn)
        self._explicit_schema = args_schema is not None
        self.timeout_s = timeout_s

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **options: Any) -> Tool:
        return cls(fn, **options)

    @classmethod
    def from_langchain(cls, lc_tool: Any) -> Tool:
        """A LangChain tool (``@tool``, ``StructuredTool``) as a maru tool: same name, description
        and argument schema (the one LangChain shows a model), run through its own ``invoke``."""
        schema = lc_tool.tool_call_schema
        if not (isinstance(schema, type) and hasattr(schema, "model_validate")):
            raise ToolCallError(
                f"LangChain tool {lc_tool.name!r} describes its arguments with a JSON-schema dict; "
                "give it a pydantic args_schema, or wrap its function with maru's @tool"
            )
        if getattr(lc_tool, "func", True) is None and getattr(lc_tool, "coroutine", None) is not None:

            async def acall(**args: Any) -> Any:
                return await lc_tool.ainvoke(args)

            return cls(acall, name=lc_tool.name, description=lc_tool.description, args_schema=schema)

        def call(**args: Any) -> Any:
            return lc_tool.invoke(args)

        return cls(call, name=lc_tool.name, description=lc_tool.description, args_schema=schema)

    # ------------------------------------------------------------------ schema
    def to_openai_tool(self) -> dict[str, Any]:
        schema = self.args_schema.model_json_schema(by_alias=True)
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    @property
    def args(self) -> dict[str, Any]:
        """The JSON schema of the parameters (what the model is shown)."""
        return dict(self.to_openai_tool()["function"]["parameters"].get("properties", {}))

    # ------------------------------------------------------------------ arguments
    def validate_args(self, raw: Any) -> dict[str, Any]:
        """Validated keyword arguments, or :class:`~maru.errors.ToolCallError` saying what is wrong."""
        from pydantic import ValidationError

        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip().startswith(("{", "[")) else raw
            except json.JSONDecodeError as exc:
                raise ToolCallError(f"arguments of {self.name} are not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            fields = list(self.args_schema.model_fields.values())
            if len(fields) != 1:
                raise ToolCallError(f"{self.name} takes named arguments {sorted(self.args)}, got {raw!r:.100}")
            raw = {fields[0].alias or next(iter(self.args_schema.model_fields)): raw}
        try:
            parsed = self.args_schema.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolCallError(f"invalid arguments for {self.name}: {problems}") from None
        if self._explicit_schema:
            return dict(parsed.model_dump())
        return {f.alias or key: getattr(parsed, key) for key, f in self.args_schema.model_fields.items()}

    # ------------------------------------------------------------------ calling
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        args = self.validate_args(input)
        if self.is_async:
            from ..core.executor import run_coroutine_sync

            return run_coroutine_sync(self._acall(args))
        if self.timeout_s is None:
            return self.fn(**args)
        return _call_with_timeout(self.fn, args, self.timeout_s, self.name)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        args = self.validate_args(input)
        if self.is_async:
            return await self._acall(args)
        from ..core.executor import run_in_thread

        call = run_in_thread(functools.partial(self.fn, **args))
        if self.timeout_s is None:
            return await call
        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except TimeoutError:
            raise ToolTimeout(f"{self.name} did not finish within {self.timeout_s:g} s") from None

    async def _acall(self, args: dict[str, Any]) -> Any:
        if self.timeout_s is None:
            return await self.fn(**args)
        try:
            return await asyncio.wait_for(self.fn(**args), self.timeout_s)
        except TimeoutError:
            raise ToolTimeout(f"{self.name} did not finish within {self.timeout_s:g} s") from None

    def run_call(self, call: ToolCall, config: RunConfig | None = None) -> ToolMessage:
        """Run one model tool call; failures become an error message for the model, never a raise."""
        try:
            result = self.invoke(call.args, config)
        except Exception as exc:  # noqa: BLE001 - the model is told, the agent goes on
            return ToolMessage(_error_text(exc), tool_call_id=call.id, name=self.name, status="error")
        return ToolMessage(_as_text(result), tool_call_id=call.id, name=self.name)

    async def arun_call(self, call: ToolCall, config: RunConfig | None = None) -> ToolMessage:
        try:
            result = await self.ainvoke(call.args, config)
        except Exception as exc:  # noqa: BLE001
            return ToolMessage(_error_text(exc), tool_call_id=call.id, name=self.name, status="error")
        return ToolMessage(_as_text(result), tool_call_id=call.id, name=self.name)


def _call_with_timeout(fn: Callable[..., Any], args: dict[str, Any], timeout_s: float, name: str) -> Any:
    """Run ``fn`` on a daemon thread and stop waiting after ``timeout_s`` (Python cannot kill the
    thread; it finishes in the background and its result is dropped)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(**args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"maru-tool-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise ToolTimeout(f"{name} did not finish within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ToolCallError | ToolTimeout):
        return f"Error: {exc}"
    return f"Error: {type(exc).__name__}: {exc}"


def as_tool(thing: Any) -> Tool:
    """What an agent is handed as a tool: a :class:`Tool`, a typed function, or a LangChain tool
    (recognised by its module and shape; LangChain is never imported here)."""
    if isinstance(thing, Tool):
        return thing
    if _is_langchain_tool(thing):
        return Tool.from_langchain(thing)
    return Tool(thing)


def _is_langchain_tool(thing: Any) -> bool:
    return type(thing).__module__.startswith("langchain") and all(
        hasattr(thing, attr) for attr in ("name", "description", "tool_call_schema", "invoke", "ainvoke")
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    fn: None = None, /, *, name: str | None = ..., description: str | None = ...,
    args_schema: type[Any] | None = ..., timeout_s: float | None = ...,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    args_schema: type[Any] | None = None,
    timeout_s: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a typed function (sync or async); usable bare or with options."""

    def make(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, args_schema=args_schema, timeout_s=timeout_s)

    return make(fn) if fn is not None else make
