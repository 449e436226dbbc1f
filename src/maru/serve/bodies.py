"""The request and response bodies of the served endpoints, as pydantic models.

FastAPI validates requests and writes the OpenAPI document from these. The parts that do not
depend on the runnable (run config, error shapes) are plain classes; the bodies that carry its
input and output are made per app by :func:`build_models`, because their types are read from the
runnable (:func:`~maru.serve.schema.infer_types`) or given by the caller. The ``*Body`` protocols
say what the routes read of a validated body, so that the routes type-check although the models
only exist at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import GenericAlias
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, create_model

from .kwargs import kwargs_field
from .schema import infer_kwarg_types, infer_types, wire_type

__all__ = [
    "BatchBody",
    "CallBody",
    "ErrorDetail",
    "ErrorItem",
    "ErrorResponse",
    "InvokeBody",
    "RequestConfig",
    "ServeModels",
    "StreamEventsBody",
    "build_models",
]


class RequestConfig(BaseModel):
    """Per-request run configuration: it reaches every step (and the trace) of this call."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    run_name: str | None = None


class ErrorDetail(BaseModel):
    type: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ErrorItem(BaseModel):
    """A failed batch item (``return_exceptions``)."""

    error: ErrorDetail


# =============================================================================== what routes read
class CallBody(Protocol):
    """The options every call takes besides its input."""

    config: RequestConfig | None
    kwargs: dict[str, Any] | None
    session_id: str | None


class InvokeBody(CallBody, Protocol):
    input: Any


class BatchBody(CallBody, Protocol):
    inputs: list[Any]
    return_exceptions: bool
    max_concurrency: int | None


class StreamEventsBody(InvokeBody, Protocol):
    include_names: list[str] | None
    include_kinds: list[str] | None
    include_tags: list[str] | None


# =============================================================================== per-app models
@dataclass(frozen=True, slots=True)
class ServeModels:
    """The models of one app, and the wire types they were built from."""

    input_type: Any
    output_type: Any
    invoke_request: type[BaseModel]
    batch_request: type[BaseModel]
    stream_events_request: type[BaseModel]
    invoke_response: type[BaseModel]
    batch_response: type[BaseModel]


def build_models(
    runnable: Any,
    *,
    input_type: Any = None,
    output_type: Any = None,
    allowed_kwargs: tuple[str, ...] = (),
    kwarg_types: Mapping[str, Any] | None = None,
) -> ServeModels:
    """The request and response models for serving ``runnable`` (a runnable, already coerced).

    ``input_type`` / ``output_type`` replace what :func:`~maru.serve.schema.infer_types` reads;
    ``allowed_kwargs`` (already checked) are the names the ``kwargs`` field takes; their types are
    ``kwarg_types``' where given, else the served function's parameter annotations.
    """
    inferred_in, inferred_out = infer_types(runnable)
    in_type = inferred_in if input_type is None else wire_type(input_type, out=False)
    out_type = inferred_out if output_type is None else wire_type(output_type, out=True)
    types = {**infer_kwarg_types(runnable, allowed_kwargs), **(kwarg_types or {})}
    common = _call_options(allowed_kwargs, types)
    forbid = ConfigDict(extra="forbid")
    return ServeModels(
        input_type=in_type,
        output_type=out_type,
        invoke_request=create_model(
            "InvokeRequest", __config__=forbid, input=(in_type, Field(...)), **common
        ),
        batch_request=create_model(
            "BatchRequest",
            __config__=forbid,
            inputs=(_list_of(in_type), Field(...)),
            return_exceptions=(bool, False),
            max_concurrency=(int | None, Field(default=None, ge=1)),
            **common,
        ),
        stream_events_request=create_model(
            "StreamEventsRequest",
            __config__=forbid,
            input=(in_type, Field(...)),
            include_names=(list[str] | None, None),
            include_kinds=(list[str] | None, None),
            include_tags=(list[str] | None, None),
            **common,
        ),
        invoke_response=create_model("InvokeResponse", output=(out_type, ...)),
        batch_response=create_model(
            "BatchResponse", outputs=(_list_of(out_type | ErrorItem), ...)
        ),
    )


def _call_options(allowed_kwargs: tuple[str, ...], types: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every request model ends with: ``config``, ``kwargs``, ``session_id``."""
    return {
        "config": (RequestConfig | None, Field(default=None, description=RequestConfig.__doc__)),
        "kwargs": kwargs_field(allowed_kwargs, types),
        "session_id": (
            str | None,
            Field(
                default=None,
                description='Passed as config["configurable"]["session_id"], for runnables wrapped with chat history.',
            ),
        ),
    }


def _list_of(item: Any) -> Any:
    """``list[item]``, for an item type only known at run time."""
    return GenericAlias(list, item)
