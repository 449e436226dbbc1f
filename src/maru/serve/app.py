"""The HTTP face of a runnable: a FastAPI app with invoke, batch and two server-sent-event streams.

Endpoints (bodies are JSON; every response carries an ``X-Request-ID`` header):

- ``POST /invoke`` ``{"input", "config"?, "kwargs"?, "session_id"?}`` → ``{"output"}``
- ``POST /batch`` ``{"inputs", "config"?, "kwargs"?, "session_id"?, "return_exceptions"?,
  "max_concurrency"?}`` → ``{"outputs"}``; with ``return_exceptions`` a failed item is
  ``{"error": {"type", "message"}}``
- ``POST /stream`` → ``text/event-stream``: ``event: data`` per chunk, then ``event: end``; a
  failure after the first chunk is ``event: error`` and the stream closes. A failure before the
  first chunk is an ordinary JSON error response with its status.
- ``POST /stream_events`` → ``text/event-stream`` of the run events (``astream_events``), then
  ``end`` (or ``error``)
- ``GET /health`` → ``{"status": "ok", "name": ...}``; ``GET /openapi.json`` with the input and
  output types from :func:`maru.serve.schema.infer_types`; ``GET /docs``, Swagger UI served from
  the installed ``swagger-ui-bundle`` package, never a CDN (see :mod:`maru.serve.docs`).

``config`` takes ``tags``, ``metadata`` and ``run_name`` only; the server adds
``metadata["request_id"]``. ``session_id`` is passed as ``config["configurable"]["session_id"]``,
where a history-wrapped runnable reads it. ``kwargs`` reach the runnable's call only for the names
the server allows (``allowed_kwargs``, ``maru serve --kwarg NAME``): by default a client cannot pass
keywords at all, so it cannot override, say, a model's parameters.
"""

# No ``from __future__ import annotations`` here: the route functions are annotated with request
# models built at run time, and FastAPI reads those annotations as objects.

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model
from pydantic.json_schema import SkipJsonSchema

from ..core.config import RunConfig
from .encoding import dumps, event_to_dict, sse
from .errors import error_payload, redact, status_for
from .schema import decode_input, infer_types

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]

log = logging.getLogger("maru.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RESERVED_KWARGS = frozenset(
    {
        "self", "input", "inputs", "config", "return_exceptions", "max_concurrency",
        "include_names", "include_kinds", "include_tags",
    }
)
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
DRAIN_LIMIT_SECONDS = 5.0


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


def create_app(
    runnable: Any,
    *,
    max_body_bytes: int = 1_000_000,
    title: str | None = None,
    input_type: Any = None,
    output_type: Any = None,
    allowed_kwargs: Iterable[str] = (),
) -> "FastAPI":
    """A FastAPI app serving ``runnable`` (a runnable, or a function made one).

    ``max_body_bytes`` caps request bodies (413 beyond it, whether or not the client declared a
    ``Content-Length``). ``input_type`` / ``output_type`` override what
    :func:`~maru.serve.schema.infer_types` reads from the runnable, for validation and the OpenAPI
    document (message classes may appear in them: they travel as message dicts).
    ``allowed_kwargs`` names the keyword arguments a request's ``kwargs`` may pass to the call;
    any other is refused with 422. Reserved names (``input``, ``config`` …) cannot be allowed.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .._version import __version__
    from ..core import coerce
    from .docs import add_docs
    from .schema import _describable, _wire

    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
    allowed = check_allowed_kwargs(allowed_kwargs)
    step = coerce(runnable)
    inferred_in, inferred_out = infer_types(step)
    in_type = inferred_in if input_type is None else _describable(_wire(input_type, out=False))
    out_type = inferred_out if output_type is None else _describable(_wire(output_type, out=True))

    common: dict[str, Any] = {
        "config": (Optional[RequestConfig], Field(default=None, description=RequestConfig.__doc__)),  # noqa: UP045
        "kwargs": kwargs_field(allowed),
        "session_id": (
            Optional[str],  # noqa: UP045
            Field(
                default=None,
                description='Passed as config["configurable"]["session_id"], for runnables wrapped with chat history.',
            ),
        ),
    }
    forbid = ConfigDict(extra="forbid")
    InvokeRequest = create_model(  # noqa: N806
        "InvokeRequest", __config__=forbid, input=(in_type, Field(...)), **common
    )
    BatchRequest = create_model(  # noqa: N806
        "BatchRequest",
        __config__=forbid,
        inputs=(list[in_type], Field(...)),  # type: ignore[valid-type]
        return_exceptions=(bool, False),
        max_concurrency=(Optional[int], Field(default=None, ge=1)),  # noqa: UP045
        **common,
    )
    StreamEventsRequest = create_model(  # noqa: N806
        "StreamEventsRequest",
        __config__=forbid,
        input=(in_type, Field(...)),
        include_names=(Optional[list[str]], None),  # noqa: UP045
        include_kinds=(Optional[list[str]], None),  # noqa: UP045
        include_tags=(Optional[list[str]], None),  # noqa: UP045
        **common,
    )
    InvokeResponse = create_model("InvokeResponse", output=(out_type, ...))  # noqa: N806
    BatchResponse = create_model(  # noqa: N806
        "BatchResponse", outputs=(list[out_type | ErrorItem], ...)  # type: ignore[valid-type,operator]
    )

    app = FastAPI(
        title=title or f"maru: {step.name}",
        version=__version__,
        description=(
            f"Serves the runnable `{step.name}` with maru. Streams are server-sent events; errors "
            'are `{"error": {"type", "message"}}` with a 4xx/5xx status.'
        ),
        docs_url=None,  # served by add_docs from local files: FastAPI's page loads a CDN
        redoc_url=None,  # ReDoc has no offline bundle here; a page that needs the internet is worse than none
    )
    app.state.runnable = step
    app.state.input_type = in_type
    app.state.output_type = out_type
    app.state.allowed_kwargs = allowed
    app.add_middleware(RequestGate, max_body_bytes=max_body_bytes)
    add_docs(app)

    # ------------------------------------------------------------------ error handlers
    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, details = describe_validation_errors(exc.errors(), request.headers.get("content-type"))
        return json_error(422, "validation_error", message, details)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return json_error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

    # ------------------------------------------------------------------ helpers
    def call_args(request: Request, body: Any) -> tuple[RunConfig, dict[str, Any]] | Response:
        kwargs = dict(body.kwargs or {})
        refused = sorted(k for k in kwargs if k not in allowed)
        if refused:
            message, details = refuse_kwargs(refused, allowed)
            return json_error(422, "validation_error", message, details)
        return run_config(request, body), kwargs

    def failure(exc: BaseException, where: str) -> Response:
        status = status_for(exc)
        if status >= 500:
            log.error("%s failed: %s: %s", where, type(exc).__name__, redact(str(exc)), exc_info=exc)
        payload = error_payload(exc)
        return json_error(status, payload["type"], payload["message"])

    # ------------------------------------------------------------------ routes
    @app.get("/health", summary="Liveness check")
    async def health() -> dict[str, str]:
        return {"status": "ok", "name": step.name}

    @app.post(
        "/invoke",
        response_model=InvokeResponse,
        responses=ERROR_RESPONSES,  # type: ignore[arg-type]
        summary="Run the runnable on one input",
    )
    async def invoke(request: Request, body: InvokeRequest) -> Response:  # type: ignore[valid-type]
        args = call_args(request, body)
        if isinstance(args, Response):
            return args
        config, kwargs = args
        try:
            output = await step.ainvoke(decode_input(body.input), config, **kwargs)  # type: ignore[attr-defined]
        except Exception as exc:
            return failure(exc, "/invoke")
        return json_response({"output": output})

    @app.post(
        "/batch",
        response_model=BatchResponse,
        responses=ERROR_RESPONSES,  # type: ignore[arg-type]
        summary="Run the runnable on many inputs",
    )
    async def batch(request: Request, body: BatchRequest) -> Response:  # type: ignore[valid-type]
        args = call_args(request, body)
        if isinstance(args, Response):
            return args
        config, kwargs = args
        inputs = [decode_input(x) for x in body.inputs]  # type: ignore[attr-defined]
        if body.max_concurrency is not None:  # type: ignore[attr-defined]
            kwargs["max_concurrency"] = body.max_concurrency  # type: ignore[attr-defined]
        try:
            outputs = await step.abatch(
                inputs, config, return_exceptions=body.return_exceptions, **kwargs  # type: ignore[attr-defined]
            )
        except Exception as exc:
            return failure(exc, "/batch")
        items = [{"error": error_payload(o)} if isinstance(o, BaseException) else o for o in outputs]
        return json_response({"outputs": items})

    sse_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": SSE_DESCRIPTION},
        **ERROR_RESPONSES,
    }

    @app.post(
        "/stream",
        response_class=StreamingResponse,
        responses=sse_responses,  # type: ignore[arg-type]
        summary="Stream the output as server-sent events",
    )
    async def stream(request: Request, body: InvokeRequest) -> Response:  # type: ignore[valid-type]
        args = call_args(request, body)
        if isinstance(args, Response):
            return args
        config, kwargs = args
        chunks = aiter(step.astream(decode_input(body.input), config, **kwargs))  # type: ignore[attr-defined]
        # Wait for the first chunk before answering, so that input the runnable refuses gets a
        # proper 422 (and any early failure its status) instead of a 200 with an error event.
        try:
            first: Any = await anext(chunks)
        except StopAsyncIteration:
            first = _NOTHING
        except Exception as exc:
            await _aclose(chunks)
            return failure(exc, "/stream")
        return StreamingResponse(
            stream_chunks(first, chunks), media_type="text/event-stream", headers=SSE_HEADERS
        )

    @app.post(
        "/stream_events",
        response_class=StreamingResponse,
        responses=sse_responses,  # type: ignore[arg-type]
        summary="Stream the run events of every step as server-sent events",
    )
    async def stream_events(request: Request, body: StreamEventsRequest) -> Response:  # type: ignore[valid-type]
        args = call_args(request, body)
        if isinstance(args, Response):
            return args
        config, kwargs = args
        events = aiter(
            step.astream_events(
                decode_input(body.input),  # type: ignore[attr-defined]
                config,
                include_names=body.include_names,  # type: ignore[attr-defined]
                include_kinds=body.include_kinds,  # type: ignore[attr-defined]
                include_tags=body.include_tags,  # type: ignore[attr-defined]
                **kwargs,
            )
        )
        return StreamingResponse(stream_run_events(events), media_type="text/event-stream", headers=SSE_HEADERS)

    return app


# =============================================================================== kwargs
def check_allowed_kwargs(names: Iterable[str]) -> tuple[str, ...]:
    """The allow-list, checked: each name an identifier, none reserved, in the given order."""
    if isinstance(names, str):
        raise TypeError(f"allowed_kwargs takes a list of names, not the string {names!r}")
    allowed = tuple(dict.fromkeys(names))
    bad = [n for n in allowed if not isinstance(n, str) or not n.isidentifier() or n in RESERVED_KWARGS]
    if bad:
        raise ValueError(
            f"{bad} cannot be allowed as kwargs: names must be identifiers other than "
            f"{sorted(RESERVED_KWARGS)}"
        )
    return allowed


def kwargs_field(allowed: tuple[str, ...]) -> tuple[Any, Any]:
    """The request models' ``kwargs`` field. With nothing allowed it is left out of the OpenAPI
    document (a request that sends it still gets the 422 that says how to allow a keyword)."""
    if not allowed:
        return Annotated[Optional[dict[str, Any]], SkipJsonSchema()], None  # noqa: UP045
    schema = {"type": "object", "properties": {name: {} for name in allowed}, "additionalProperties": False}
    names = ", ".join(f"`{n}`" for n in allowed)
    return (
        Optional[Annotated[dict[str, Any], WithJsonSchema(schema)]],  # noqa: UP045
        Field(default=None, description=f"Keyword arguments for the call. This server accepts: {names}."),
    )


def refuse_kwargs(refused: list[str], allowed: tuple[str, ...]) -> tuple[str, list[dict[str, Any]]]:
    """The 422 message and details for kwargs outside the allow-list."""
    reserved = [k for k in refused if k in RESERVED_KWARGS or not k.isidentifier()]
    others = [k for k in refused if k not in reserved]
    accepts = f"it accepts {list(allowed)}" if allowed else "it accepts none"
    parts = []
    if others:
        parts.append(
            f"kwargs {others} are not allowed by this server ({accepts}); to allow one, start it "
            "with `maru serve --kwarg NAME` or `create_app(..., allowed_kwargs=[NAME])`"
        )
    if reserved:
        parts.append(
            f"kwargs {reserved} can never be passed: keys must be identifiers other than "
            f"{sorted(RESERVED_KWARGS)} (put the input in 'input' and run options in 'config')"
        )
    details = [
        {
            "loc": ["body", "kwargs", k],
            "msg": "reserved or invalid keyword" if k in reserved else "keyword not allowed",
            "type": "value_error",
        }
        for k in refused
    ]
    return "; ".join(parts), details


# =============================================================================== responses
_NOTHING = object()


def json_response(payload: Any, status: int = 200, headers: Any = None) -> Any:
    from fastapi.responses import Response

    return Response(dumps(payload), status_code=status, media_type="application/json", headers=headers)


def json_error(
    status: int,
    type_: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Any = None,
) -> Any:
    error: dict[str, Any] = {"type": type_, "message": message}
    if details is not None:
        error["details"] = details
    return json_response({"error": error}, status, headers)


def run_config(request: Any, body: Any) -> RunConfig:
    """The config one call runs with: the request's tags, metadata and run name, the request id in
    the metadata, the session id under ``configurable``."""
    config: RunConfig = {}
    requested = body.config
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
    if body.session_id is not None:
        config["configurable"] = {"session_id": body.session_id}
    return config


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


async def stream_run_events(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse("data", event_to_dict(event))
        yield sse("end", {})
    except Exception as exc:
        yield _error_event(exc, "/stream_events")
    finally:
        await _aclose(events)


def _error_event(exc: BaseException, where: str) -> bytes:
    status = status_for(exc)
    if status >= 500:
        log.error("%s failed mid-stream: %s: %s", where, type(exc).__name__, redact(str(exc)), exc_info=exc)
    return sse("error", {"error": {**error_payload(exc), "status_code": status}})


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # closing a failed generator must not hide the original outcome
            log.debug("closing a stream failed", exc_info=True)


# =============================================================================== validation errors
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


# =============================================================================== request gate
def request_id_of(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = uuid.uuid4().hex
    return str(rid)


class RequestGate:
    """ASGI middleware in front of every route: gives each request an id (``X-Request-ID``) and
    enforces the body size limit.

    The limit is checked twice: against ``Content-Length`` when the client declares one, and by
    counting the bytes actually received (a chunked body, or a client whose header lies). The body
    is read here, up to the limit, and replayed to the app. A refused body is drained (up to
    16 MiB or 5 s) before the 413 goes out, so the client, still writing, reads the answer instead
    of a reset connection.
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", request_id_of(scope).encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send_with_id)
            return

        limit = self.max_body_bytes
        declared = _content_length(scope)
        body = bytearray()
        more = True
        if declared is None or declared <= limit:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    break
        if (declared is not None and declared > limit) or len(body) > limit:
            if more:
                await _drain(receive)
            await self._too_large(send_with_id, declared)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as ASGI says

        await self.app(scope, replay, send_with_id)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more than that"
        payload = {
            "error": {
                "type": "request_too_large",
                "message": f"the request body is limited to {self.max_body_bytes} bytes; got {size}",
            }
        }
        content = dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of a refused body, within bounds."""
    drained = 0
    deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
    while drained < DRAIN_LIMIT_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
