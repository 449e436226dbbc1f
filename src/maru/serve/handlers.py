"""FastAPI's own errors (a body that fails validation, an HTTP error such as 404 or 405) answered
in the same ``{"error": {"type", "message", "details"?}}`` shape as the runnable's failures, with a
message a person can act on: FastAPI's default is a list of pydantic errors, one per union member.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import redact
from .responses import json_error

__all__ = ["add_error_handlers", "describe_validation_errors"]


def add_error_handlers(app: FastAPI) -> None:
    """Answer validation and HTTP errors on ``app`` in maru's error shape."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, details = describe_validation_errors(exc.errors(), request.headers.get("content-type"))
    return json_error(422, "validation_error", message, details)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return json_error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)


# =============================================================================== readable messages
def describe_validation_errors(
    errors: Any, content_type: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """A readable message and JSON-safe details for FastAPI's validation errors."""
    details: list[dict[str, Any]] = []
    lines: list[str] = []
    errors = list(errors)
    for loc, kinds, value in _union_failures(errors):
        wanted = sorted({_EXPECTED[k] for k in kinds}, key=list(_EXPECTED.values()).index)
        choices = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
        lines.append(f"{_path(loc)}: Input should be {choices} (got {_json_type(value)})")
        details.append({"loc": ["body", *loc], "msg": f"Input should be {choices}", "type": "union_type"})
    errors = [e for e in errors if not e.get("_merged")]
    for error in errors:
        loc = [p for p in error.get("loc", ()) if p != "body"] if error.get("loc") else []
        kind = str(error.get("type", "value_error"))
        msg = str(error.get("msg", "invalid"))
        if kind == "json_invalid":
            ctx = error.get("ctx") or {}
            where = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
            lines.append(f"the request body is not valid JSON: {ctx.get('error', msg)}{where}")
            details.append({"loc": ["body"], "msg": f"JSON decode error: {ctx.get('error', msg)}", "type": kind})
            continue
        path = _path(loc)
        if not loc and kind in ("model_attributes_type", "dict_type", "missing"):
            lines.append(
                "the request body must be a JSON object such as {\"input\": ...}, sent with "
                f"Content-Type: application/json (got {content_type or 'no Content-Type'})"
                if kind != "missing"
                else 'the request body is empty: send a JSON object such as {"input": ...}'
            )
        else:
            got = ""
            if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
                got = f" (got {_json_type(error.get('input'))})"
            lines.append(f"{path}: {msg}{got}")
        details.append({"loc": ["body", *loc], "msg": msg, "type": kind})
    shown = lines[:5]
    more = f"; and {len(lines) - 5} more" if len(lines) > 5 else ""
    return redact("; ".join(shown) + more) if shown else "invalid request", details


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


def _union_failures(errors: list[dict[str, Any]]) -> list[tuple[list[Any], list[str], Any]]:
    """Errors pydantic reports once per member of a union that refused a value (``question.str``,
    ``question.int`` …), merged into one per value; the merged ones are marked ``_merged``."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for error in errors:
        loc = tuple(p for p in error.get("loc", ()) if p != "body")
        if len(loc) >= 2 and _is_union_tag(str(error.get("type")), loc[-1]):
            groups.setdefault(loc[:-1], []).append(error)
    merged = []
    for prefix, members in groups.items():
        if len(members) < 2 or len({tuple(m["loc"])[-1] for m in members}) < 2:
            continue
        for member in members:
            member["_merged"] = True
        merged.append((list(prefix), [m["type"] for m in members], members[0].get("input")))
    return merged


_TAGS = {"string_type": "str", "int_type": "int", "int_from_float": "int", "float_type": "float",
         "bool_type": "bool", "none_required": "none"}


def _is_union_tag(kind: str, tag: Any) -> bool:
    """Whether ``tag``, the last part of an error's location, names the union member that failed
    (pydantic's ``str``, ``int``, ``list[...]``, a model's class name) rather than a field."""
    if not isinstance(tag, str) or kind not in _EXPECTED:
        return False
    if kind in _TAGS:
        return tag == _TAGS[kind]
    if kind == "list_type":
        return tag.startswith("list[")
    if kind == "dict_type":
        return tag.startswith("dict[")
    return tag[:1].isupper()  # model_type / model_attributes_type: the model's class name


def _path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


