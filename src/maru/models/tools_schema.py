"""Turn what users call a "tool" into the OpenAI function-tool schema every provider here speaks.

Accepted: an object with ``to_openai_tool()`` (maru's own tools), an OpenAI-shaped dict
(``{"type": "function", "function": {...}}``), a bare ``{"name", "description", "parameters"}``
dict, a JSON schema with a ``title``, a pydantic model class, a ``TypedDict`` class, or a typed
Python function (its signature and docstring become the schema). The conversion happens once, when
tools are bound, never per call.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "args_model",
    "function_description",
    "normalize_tool_choice",
    "to_openai_tool",
    "to_openai_tools",
    "tool_name",
]

_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises?|Examples?|Notes?|Attributes)\s*:\s*$"
)
_GOOGLE_ARG = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def to_openai_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    return [to_openai_tool(t) for t in tools]


def to_openai_tool(tool: Any) -> dict[str, Any]:
    """The ``{"type": "function", "function": {name, description, parameters}}`` schema of ``tool``."""
    if isinstance(tool, Mapping):
        return _from_dict(tool)
    converter = getattr(tool, "to_openai_tool", None)
    if converter is not None and callable(converter) and not isinstance(tool, type):
        return _from_dict(converter())
    if type(tool).__module__.startswith("langchain") and hasattr(tool, "tool_call_schema"):
        return _from_langchain_tool(tool)
    if isinstance(tool, type):
        from pydantic import BaseModel

        if issubclass(tool, BaseModel):
            return _function(tool.__name__, _own_doc(tool), _clean_schema(tool.model_json_schema()))
        if issubclass(tool, dict) and hasattr(tool, "__required_keys__"):  # any TypedDict flavour
            from pydantic import TypeAdapter

            schema = TypeAdapter(tool).json_schema()
            return _function(tool.__name__, _own_doc(tool), _clean_schema(schema))
    if callable(tool):
        return _from_function(tool)
    raise TypeError(
        f"cannot make a tool schema from {type(tool).__name__}: {tool!r:.80}; pass a pydantic model "
        "class, a typed function, an OpenAI tool dict or an object with to_openai_tool()"
    )


def tool_name(tool: Mapping[str, Any]) -> str:
    """The function name of a converted tool schema."""
    return str(tool["function"]["name"])


def normalize_tool_choice(choice: Any, tools: Sequence[Mapping[str, Any]]) -> Any:
    """OpenAI's ``tool_choice`` from what users write: ``"auto" | "none" | "required"`` (``"any"`` is
    read as ``"required"``), a tool's name, ``True`` (force the only tool) or a ready-made dict."""
    if choice is None or isinstance(choice, Mapping):
        return choice
    names = [tool_name(t) for t in tools]
    if choice is True:
        if len(names) != 1:
            raise ValueError(
                f"tool_choice=True forces the one bound tool, but {len(names)} tools are bound "
                f"({names}); pass the name of the tool to force instead"
            )
        choice = names[0]
    if choice is False:
        return "none"
    if choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    if isinstance(choice, str):
        if choice not in names:
            raise ValueError(
                f"tool_choice={choice!r} names no bound tool; bound tools are {names}. "
                "Use one of them, or 'auto', 'none' or 'required'"
            )
        return {"type": "function", "function": {"name": choice}}
    raise TypeError(f"tool_choice must be a string, True or a dict, got {type(choice).__name__}")


# --------------------------------------------------------------------------- helpers
def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def _from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    if data.get("type") == "function" and "function" in data:
        return dict(data)  # already the wire shape
    if "name" in data:
        parameters = (
            data.get("parameters")
            or data.get("input_schema")
            or {"type": "object", "properties": {}}
        )
        return _function(str(data["name"]), str(data.get("description") or ""), dict(parameters))
    if "title" in data and ("properties" in data or data.get("type") == "object"):
        schema = dict(data)
        name = str(schema.pop("title"))
        description = str(schema.pop("description", "") or "")
        return _function(name, description, schema)
    raise ValueError(
        f"a tool dict needs either 'type': 'function' with 'function', or a 'name' (with 'description' "
        f"and 'parameters'), or a JSON schema with a 'title'; got keys {sorted(data)}"
    )


def _from_langchain_tool(tool: Any) -> dict[str, Any]:
    """A langchain-core tool (``@tool``, ``StructuredTool``): its name, description and the
    argument schema LangChain itself shows a model. Recognised by shape; LangChain is not imported."""
    schema = tool.tool_call_schema
    parameters = schema if isinstance(schema, Mapping) else schema.model_json_schema()
    return _function(str(tool.name), str(tool.description or ""), _clean_schema(dict(parameters)))


def _own_doc(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles: the tool name already names the schema and property titles only
    repeat the property names, costing prompt tokens for nothing."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "description")}
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {
            name: {k: v for k, v in prop.items() if k != "title"}
            if isinstance(prop, dict)
            else prop
            for name, prop in properties.items()
        }
    return schema


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and per-argument descriptions (Google ``Args:`` or
    Sphinx ``:param x:`` style)."""
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        header = _SECTION.match(line)
        if header:
            section = header.group(1).lower()
            current = None
            continue
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current = sphinx.group(1)
            args[current] = sphinx.group(2).strip()
            section = "sphinx"
            continue
        if line.lstrip().startswith(":"):
            section, current = "sphinx", None
            continue
        if section is None:
            description.append(line)
        elif section in ("args", "arguments", "parameters", "params"):
            match = _GOOGLE_ARG.match(line)
            if match and (len(line) - len(line.lstrip())) <= 4:
                current = match.group(1).lstrip("*")
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
        elif section == "sphinx" and current and line.strip():
            args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), args


def _from_function(fn: Callable[..., Any]) -> dict[str, Any]:
    name = getattr(fn, "__name__", type(fn).__name__)
    description, _ = _parse_docstring(inspect.getdoc(fn) or "")
    model = args_model(fn)
    return _function(name, description, _clean_schema(model.model_json_schema(by_alias=True)))


def function_description(fn: Callable[..., Any]) -> str:
    """The summary part of a function's docstring (argument sections removed)."""
    return _parse_docstring(inspect.getdoc(fn) or "")[0]


def args_model(fn: Callable[..., Any]) -> type[Any]:
    """A pydantic model of ``fn``'s parameters (types, defaults, docstring descriptions), validating
    by parameter name. Tools use it to check a model's arguments before calling the function."""
    from pydantic import ConfigDict, Field, create_model

    name = getattr(fn, "__name__", type(fn).__name__)
    _, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = dict(getattr(fn, "__annotations__", {}))
    fields: dict[str, Any] = {}
    for i, (pname, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or pname in ("self", "cls"):
            continue
        annotation = hints.get(pname, Any)
        field_description = arg_docs.get(pname) or _annotated_description(annotation)
        default = ... if param.default is param.empty else param.default
        # Fields are keyed by position and carry the real name as alias, so a parameter called
        # ``json`` or ``schema`` cannot clash with BaseModel's own attributes.
        fields[f"p{i}"] = (annotation, Field(default, alias=pname, description=field_description))
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    return create_model(f"{name}_args", __config__=config, **fields)  # type: ignore[call-overload, no-any-return]


def _annotated_description(annotation: Any) -> str | None:
    """``Annotated[str, "the city"]``: a plain string in the metadata is the description."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, str):
                return meta
    return None
