"""The endpoints, as plain async functions of a request and its validated body.

Each reads what it serves from ``request.app.state`` (``runnable`` and ``allowed_kwargs``, put
there by :func:`~maru.serve.app.create_app`), so a test can call one with a stub request.
:func:`add_routes` registers them on an app, with the body models built for that app.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations as objects.

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from ..core.config import RunConfig
from ..core.runnable import Runnable
from .bodies import (
    BatchBody,
    CallBody,
    ErrorResponse,
    InvokeBody,
    RequestConfig,
    ServeModels,
    StreamEventsBody,
)
from .encoding import sse
from .errors import error_payload, status_for
from .event_view import EventView
from .gate import request_id_of
from .kwargs import refuse_kwargs, requested_kwargs
from .responses import json_error, json_response
from .schema import decode_input

__all__ = ["add_routes", "batch", "health", "invoke", "stream", "stream_events"]

log = logging.getLogger("maru.serve")

Route = Callable[..., Awaitable[Any]]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "The body is larger than the server accepts"},
    422: {"model": ErrorResponse, "description": "Malformed JSON, wrong types, or input the runnable refused"},
    429: {"model": ErrorResponse, "description": "A usage budget refused the call"},
    500: {"model": ErrorResponse, "description": "The runnable failed"},
}

SSE_DESCRIPTION = (
    "Server-sent events. `event: data` with one JSON value per chunk, then `event: end`; "
    "if the runnable fails after the stream started, `event: error` with "
    '`{"error": {"type", "message", "status_code"}}` and the stream closes.'
)

SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": SSE_DESCRIPTION},
    **ERROR_RESPONSES,
}


# =============================================================================== registration
def add_routes(app: FastAPI, models: ServeModels) -> None:
    """Register the endpoints on ``app``, their bodies validated and documented by ``models``."""
    app.add_api_route("/health", _endpoint(health), methods=["GET"], summary="Liveness check")
    _post(app, "/invoke", invoke, models.invoke_request, "Run the runnable on one input",
          response_model=models.invoke_response, responses=ERROR_RESPONSES)
    _post(app, "/batch", batch, models.batch_request, "Run the runnable on many inputs",
          response_model=models.batch_response, responses=ERROR_RESPONSES)
    _post(app, "/stream", stream, models.invoke_request, "Stream the output as server-sent events",
          response_class=StreamingResponse, responses=SSE_RESPONSES)
    _post(app, "/stream_events", stream_events, models.stream_events_request,
          "Stream the run events of every step as server-sent events",
          response_class=StreamingResponse, responses=SSE_RESPONSES)


def _post(
    app: FastAPI, path: str, route: Route, body: type[BaseModel], summary: str, **options: Any
) -> None:
    app.add_api_route(path, _endpoint(route, body), methods=["POST"], summary=summary, **options)


def _endpoint(route: Route, body: type[BaseModel] | None = None) -> Route:
    """``route`` as FastAPI should read it: its ``body`` parameter annotated with this app's model
    (FastAPI validates and documents the body from that annotation), named like ``route`` (the
    OpenAPI operation id) and without its docstring (which FastAPI would publish as the operation's
    description)."""

    async def endpoint(**values: Any) -> Any:
        return await route(**values)

    signature = inspect.signature(route)
    if body is not None:
        parameters = [p.replace(annotation=body) if p.name == "body" else p for p in signature.parameters.values()]
        signature = signature.replace(parameters=parameters)
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = route.__name__
    return endpoint


# =============================================================================== endpoints
async def health(request: Request) -> dict[str, str]:
    """Liveness: the server answers, and names what it serves."""
    return {"status": "ok", "name": request.app.state.runnable.name}


async def invoke(request: Request, body: InvokeBody) -> Response:
    """Run the runnable on one input."""
    call = prepare_call(request, body)
    if isinstance(call, Response):
        return call
    try:
        output = await call.runnable.ainvoke(decode_input(body.input), call.config, **call.kwargs)
    except Exception as exc:
        return failure(exc, "/invoke")
    return json_response({"output": output})


async def batch(request: Request, body: BatchBody) -> Response:
    """Run the runnable on many inputs; with ``return_exceptions`` a failed item is an error object."""
    call = prepare_call(request, body)
    if isinstance(call, Response):
        return call
    inputs = [decode_input(x) for x in body.inputs]
    if body.max_concurrency is not None:
        call.kwargs["max_concurrency"] = body.max_concurrency
    try:
        outputs = await call.runnable.abatch(
            inputs, call.config, return_exceptions=body.return_exceptions, **call.kwargs
        )
    except Exception as exc:
        return failure(exc, "/batch")
    items = [{"error": error_payload(o)} if isinstance(o, BaseException) else o for o in outputs]
    return json_response({"outputs": items})


async def stream(request: Request, body: InvokeBody) -> Response:
    """Stream the output chunks as server-sent events.

    The first chunk is awaited before answering, so that input the runnable refuses gets a proper
    422 (and any early failure its status) instead of a 200 with an error event.
    """
    call = prepare_call(request, body)
    if isinstance(call, Response):
        return call
    chunks = aiter(call.runnable.astream(decode_input(body.input), call.config, **call.kwargs))
    try:
        first: Any = await anext(chunks)
    except StopAsyncIteration:
        first = _NOTHING
    except Exception as exc:
        await _aclose(chunks)
        return failure(exc, "/stream")
    return StreamingResponse(stream_chunks(first, chunks), media_type="text/event-stream", headers=SSE_HEADERS)


async def stream_events(request: Request, body: StreamEventsBody) -> Response:
    """Stream the run events of every step as server-sent events."""
    call = prepare_call(request, body)
    if isinstance(call, Response):
        return call
    events = aiter(
        call.runnable.astream_events(
            decode_input(body.input),
            call.config,
            include_names=body.include_names,
            include_kinds=body.include_kinds,
            include_tags=body.include_tags,
            **call.kwargs,
        )
    )
    view = EventView.of_call(call.config, request.app.state.expose_server_metadata)
    return StreamingResponse(stream_run_events(events, view), media_type="text/event-stream", headers=SSE_HEADERS)


# =============================================================================== one call
@dataclass(slots=True)
class Call:
    """What a request runs: the served runnable, with the config and kwargs the request asked for."""

    runnable: Runnable[Any, Any]
    config: RunConfig
    kwargs: dict[str, Any]


def prepare_call(request: Request, body: CallBody) -> Call | Response:
    """The call ``body`` asks for, or the 422 that refuses kwargs the server does not allow."""
    state = request.app.state
    kwargs = requested_kwargs(body.kwargs)
    refused = sorted(k for k in kwargs if k not in state.allowed_kwargs)
    if refused:
        message, details = refuse_kwargs(refused, state.allowed_kwargs)
        return json_error(422, "validation_error", message, details)
    return Call(state.runnable, run_config(request, body), kwargs)


def run_config(request: Request, body: CallBody) -> RunConfig:
    """The config one call runs with: the request's tags, metadata and run name, the request id in
    the metadata, the session id under ``configurable``."""
    config = request_config(request, body.config)
    if body.session_id is not None:
        config["configurable"] = {"session_id": body.session_id}
    return config


def request_config(request: Request, requested: RequestConfig | None) -> RunConfig:
    """The request's tags, metadata and run name, with the request id in the metadata."""
    config: RunConfig = {}
    metadata: dict[str, Any] = {}
    if requested is not None:
        if requested.tags:
            config["tags"] = list(requested.tags)
        if requested.metadata:
            metadata.update(requested.metadata)
        if requested.run_name:
            config["run_name"] = requested.run_name
    metadata["request_id"] = request_id_of(request.scope)
    config["metadata"] = metadata
    return config


def failure(exc: BaseException, where: str) -> Response:
    """The JSON error for a call that failed before answering; a 5xx is logged (redacted)."""
    status = status_for(exc)
    if status >= 500:
        log.error("%s failed: %s: %s", where, type(exc).__name__, exc, exc_info=exc)  # masked by serve.logs
    payload = error_payload(exc)
    return json_error(status, payload["type"], payload["message"])


# =============================================================================== streams
_NOTHING = object()


async def stream_chunks(first: Any, chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        if first is not _NOTHING:
            yield sse("data", first)
            async for chunk in chunks:
                yield sse("data", chunk)
        yield sse("end", {})
    except Exception as exc:
        yield _error_event(exc, "/stream")
    finally:
        await _aclose(chunks)


async def stream_run_events(events: AsyncIterator[Any], view: EventView) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse("data", view(event))
        yield sse("end", {})
    except Exception as exc:
        yield _error_event(exc, "/stream_events")
    finally:
        await _aclose(events)


def _error_event(exc: BaseException, where: str) -> bytes:
    status = status_for(exc)
    if status >= 500:
        log.error("%s failed mid-stream: %s: %s", where, type(exc).__name__, exc, exc_info=exc)
    return sse("error", {"error": {**error_payload(exc), "status_code": status}})


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # closing a failed generator must not hide the original outcome
            log.debug("closing a stream failed", exc_info=True)
