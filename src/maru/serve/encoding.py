"""Values out of a runnable, made JSON: responses, server-sent events, run events.

:func:`to_json_safe` decides how each Python value travels:

=====================================  ====================================================
value                                  on the wire
=====================================  ====================================================
str, int, bool, None                   as is
float                                  as is; NaN and ±infinity (not JSON) become ``null``
dict                                   an object; non-string keys become strings
list, tuple, set, frozenset            an array (sets in iteration order)
message, message chunk                 ``to_dict()`` (a chunk adds ``tool_call_chunks``)
prompt value                           ``{"messages": [...]}`` or ``{"text": ...}``
anything with ``to_dict()``            its ``to_dict()``
pydantic model                         ``model_dump(mode="json")``
dataclass                              an object of its fields
bytes, bytearray, memoryview           a base64 string (standard alphabet, padded)
datetime, date, time                   ISO 8601 text
timedelta                              seconds, a number
UUID, Decimal, Path                    text
Enum                                   its value
exception                              ``{"type": name, "message": redacted text}``
anything else                          ``str(value)``
=====================================  ====================================================

Nesting deeper than 64 levels (or a cycle) is cut with ``str()``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from .errors import error_payload

__all__ = ["dumps", "event_to_dict", "sse", "to_json_safe"]

_MAX_DEPTH = 64


def to_json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers, booleans, ``None``)."""
    if value is None or value.__class__ in (str, int, bool):
        return value
    if _depth > _MAX_DEPTH:
        return str(value)
    depth = _depth + 1
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum travel as their value
        return to_json_safe(value.value, depth)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {_key(k): to_json_safe(v, depth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v, depth) for v in value]
    if isinstance(value, set | frozenset):
        return [to_json_safe(v, depth) for v in value]
    return _convert_object(value, depth)


def _convert_object(value: Any, depth: int) -> Any:
    from ..messages import AIMessageChunk

    if isinstance(value, AIMessageChunk):
        data = value.to_dict()
        if value.tool_call_chunks:
            data["tool_call_chunks"] = [dataclasses.asdict(c) for c in value.tool_call_chunks]
        return to_json_safe(data, depth)
    if isinstance(value, BaseException):
        return error_payload(value)
    if isinstance(value, type):
        return value.__qualname__
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_json_safe(to_dict(), depth)
    to_messages = getattr(value, "to_messages", None)
    if callable(to_messages) and callable(getattr(value, "to_string", None)):  # a prompt value
        if hasattr(value, "messages"):
            return {"messages": to_json_safe(to_messages(), depth)}
        return {"text": value.to_string()}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return to_json_safe(model_dump(mode="json"), depth)
        except Exception:
            return to_json_safe(model_dump(), depth)
    if dataclasses.is_dataclass(value):
        return {f.name: to_json_safe(getattr(value, f.name), depth) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal | PurePath):
        return str(value)
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    safe = to_json_safe(key)
    return safe if isinstance(safe, str) else json.dumps(safe, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value`` (converted with :func:`to_json_safe`), on one line. A lone
    surrogate (text that is not text, from a decoder run with ``surrogatepass`` or a bad escape)
    travels as U+FFFD: it has no UTF-8 form."""
    text = json.dumps(to_json_safe(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def sse(event: str, data: Any) -> bytes:
    """One server-sent event. JSON escapes line breaks, so ``data`` is always a single line."""
    return b"event: " + event.encode("ascii") + b"\ndata: " + dumps(data) + b"\n\n"


_EVENT_FIELDS = ("event", "name", "kind", "run_id", "parent_id", "trace_id", "parent_ids", "tags", "metadata")


def event_to_dict(event: Any) -> dict[str, Any]:
    """A :class:`maru.core.RunEvent` as a JSON object (``data`` values made JSON-safe; an error is
    ``{"type", "message"}`` with secrets masked)."""
    out = {name: to_json_safe(getattr(event, name, None)) for name in _EVENT_FIELDS}
    out["data"] = to_json_safe(getattr(event, "data", None) or {})
    when = getattr(event, "time", None)
    if isinstance(when, int | float):
        out["time"] = when
    return out
