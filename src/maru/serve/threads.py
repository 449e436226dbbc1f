"""Threads of a checkpointed graph over HTTP, so that a web client can run a graph that pauses
for a person (``interrupt()``), show what it asks, and answer.

Served when the target is a :class:`maru.graph.CompiledGraph`, or has one as its ``.graph`` (an
agent built on the graph). A graph without a checkpointer is served with a SQLite one in maru's
home (``threads.sqlite``, see :mod:`maru._home`), so threads outlive the server process.

- ``POST /threads`` ``{"thread_id"?}`` → ``{"thread_id"}`` (a new id unless one is given)
- ``POST /threads/{id}/runs`` ``{"input", "config"?}`` → the thread once the run stopped: ended,
  or paused on an interrupt. ``"input": null`` continues nodes left due (after a failure).
- ``POST /threads/{id}/resume`` ``{"resume", "config"?}`` → the same; ``resume`` (any JSON) is
  what the paused node's ``interrupt()`` returns (``Command(resume=...)``)
- ``POST /threads/{id}/stream`` ``{"input" | "resume", "stream_mode"?, "config"?}`` → server-sent
  events: ``event: data`` with ``{"mode", "chunk"}`` per chunk (modes ``values``, ``updates``,
  ``messages``; a ``messages`` chunk adds its ``node``), then ``event: end`` with the thread
  (or ``event: error``)
- ``GET /threads/{id}/state`` → the thread; ``GET /threads/{id}/history?limit=`` →
  ``{"thread_id", "checkpoints": [...]}``, newest first

A thread is ``{"thread_id", "status", "values", "next", "interrupts": [{"node", "value"}],
"checkpoint_id", "step", "metadata", "created_at"}``; ``status`` is ``new`` (no run yet),
``interrupted`` (waiting for ``resume``), ``pending`` (nodes still due: a run failed or was cut
short; ``input: null`` continues) or ``done``. A thread is known once created here or once it has
a checkpoint (which survives restarts); any other id is a 404. One request runs on a thread at a
time (a second gets 409). What leaves — values, interrupts, chunks, errors — is masked like run
events (:mod:`maru.redact`), because a state holds tool arguments and results.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations as objects.

import copy
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .._home import maru_home
from ..core.config import RunConfig
from ..core.executor import run_in_thread
from ..graph import Command, CompiledGraph, GraphCheckpointError, SQLiteSaver, StateSnapshot
from ..redact import default_redactor
from .bodies import RequestConfig
from .encoding import sse, to_json_safe
from .responses import json_error, json_response
from .routes import (
    ERROR_RESPONSES,
    SSE_HEADERS,
    SSE_RESPONSES,
    _aclose,
    _error_event,
    failure,
    request_config,
)

__all__ = ["THREADS_FILE", "Threads", "add_thread_routes", "served_graph"]

THREADS_FILE = "threads.sqlite"
"""The SQLite file in maru's home that keeps the threads of a graph served without a checkpointer."""

STREAM_MODES = ("values", "updates", "messages")
T = TypeVar("T")
MAX_UNRUN_THREADS = 10_000
"""Threads created but never run are remembered in memory; past this many the oldest are forgotten."""


# =============================================================================== bodies
class CreateThreadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thread_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$",
        description="The id to use; a new one is made when absent.",
    )


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(..., description="The graph's input: an object of state keys; null continues due nodes.")
    config: RequestConfig | None = None


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resume: Any = Field(..., description="The answer the paused node's interrupt() returns (any JSON).")
    config: RequestConfig | None = None


class StreamBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(default=None, description="As for /runs; give input or resume, not both.")
    resume: Any = Field(default=None, description="As for /resume.")
    stream_mode: str | list[str] = Field(default="values", description=f"One or more of {list(STREAM_MODES)}.")
    config: RequestConfig | None = None


class ThreadCreated(BaseModel):
    thread_id: str


class InterruptView(BaseModel):
    node: str
    value: Any


class ThreadView(BaseModel):
    thread_id: str
    status: str = Field(description="new, interrupted, pending or done")
    values: dict[str, Any]
    next: list[str]
    interrupts: list[InterruptView]
    checkpoint_id: str | None
    step: int | None
    metadata: dict[str, Any]
    created_at: float | None


class CheckpointView(BaseModel):
    checkpoint_id: str
    step: int
    values: dict[str, Any]
    next: list[str]
    metadata: dict[str, Any]
    created_at: float


class ThreadHistory(BaseModel):
    thread_id: str
    checkpoints: list[CheckpointView]


# =============================================================================== the served graph
def served_graph(runnable: Any) -> CompiledGraph | None:
    """The compiled graph behind ``runnable``: itself, or its ``.graph``; ``None`` for anything else."""
    if isinstance(runnable, CompiledGraph):
        return runnable
    inner = getattr(runnable, "graph", None)
    return inner if isinstance(inner, CompiledGraph) else None


def with_checkpointer(graph: CompiledGraph) -> CompiledGraph:
    """``graph`` itself when it keeps threads; else a copy that keeps them in maru's home (the
    caller's graph is left as it was)."""
    if graph.checkpointer is not None:
        return graph
    served = copy.copy(graph)
    served.checkpointer = SQLiteSaver(maru_home() / THREADS_FILE)
    return served


class Threads:
    """The served graph, the threads created here and not run yet, and the threads busy now."""

    def __init__(self, graph: CompiledGraph) -> None:
        self.graph = graph
        self.unrun: OrderedDict[str, None] = OrderedDict()
        self.busy: dict[str, object] = {}  # thread id -> the claim of the request running it

    def remember(self, thread_id: str) -> None:
        self.unrun[thread_id] = None
        while len(self.unrun) > MAX_UNRUN_THREADS:
            self.unrun.popitem(last=False)

    async def snapshot(self, thread_id: str) -> StateSnapshot | None:
        return await self.read(self.graph.get_state, thread_config(thread_id))

    async def read(self, step: Callable[[RunConfig], T], config: RunConfig) -> T:
        """``step(config)`` (a read of the saver) on the shared pool when the saver waits on the
        network, so the event loop serves other requests meanwhile; inline otherwise."""
        if self.graph.checkpointer is not None and self.graph.checkpointer.io_bound:
            return await run_in_thread(step, config)
        return step(config)

    def known(self, thread_id: str, snapshot: StateSnapshot | None) -> bool:
        if snapshot is None:
            return thread_id in self.unrun
        self.unrun.pop(thread_id, None)  # its checkpoints say so from now on
        return True

    def claim(self, thread_id: str) -> object:
        """Mark the thread busy for one request (the caller checked it was free); the claim
        given back releases it."""
        claim = object()
        self.busy[thread_id] = claim
        return claim

    def release(self, thread_id: str, claim: object) -> None:
        if self.busy.get(thread_id) is claim:  # not a later request's claim
            del self.busy[thread_id]


def thread_config(thread_id: str, base: RunConfig | None = None) -> RunConfig:
    return {**(base or {}), "configurable": {"thread_id": thread_id}}


# =============================================================================== registration
def add_thread_routes(app: FastAPI, runnable: Any) -> bool:
    """Register the thread endpoints when ``runnable`` is (or has) a compiled graph; whether it did."""
    graph = served_graph(runnable)
    if graph is None:
        return False
    app.state.threads = Threads(with_checkpointer(graph))
    errors: dict[int | str, dict[str, Any]] = {
        **ERROR_RESPONSES,
        404: {"description": "No such thread"},
        409: {"description": "The thread is busy, not paused (resume), or already exists (create)"},
    }
    routes = (
        ("/threads", create_thread, "POST", "Create a thread", ThreadCreated, None),
        ("/threads/{thread_id}/runs", run_thread, "POST", "Run input on a thread until it ends or pauses",
         ThreadView, None),
        ("/threads/{thread_id}/resume", resume_thread, "POST", "Answer a paused thread and run on",
         ThreadView, None),
        ("/threads/{thread_id}/stream", stream_thread, "POST", "Run input (or an answer) on a thread, streamed",
         None, StreamingResponse),
        ("/threads/{thread_id}/state", thread_state, "GET", "A thread's state, next nodes and interrupts",
         ThreadView, None),
        ("/threads/{thread_id}/history", thread_history, "GET", "A thread's checkpoints, newest first",
         ThreadHistory, None),
    )
    for path, endpoint, method, summary, model, response_class in routes:
        options: dict[str, Any] = {"response_model": model} if model is not None else {}
        if response_class is not None:
            options.update(response_class=response_class, responses={**SSE_RESPONSES, **errors})
        else:
            options["responses"] = errors
        app.add_api_route(path, endpoint, methods=[method], summary=summary, description=summary + ".", **options)
    return True


# =============================================================================== endpoints
async def create_thread(request: Request, body: CreateThreadBody | None = None) -> Response:
    threads: Threads = request.app.state.threads
    thread_id = body.thread_id if body is not None and body.thread_id else uuid.uuid4().hex
    if threads.known(thread_id, await threads.snapshot(thread_id)):
        return json_error(409, "thread_exists", f"thread {thread_id!r} already exists; leave thread_id out to get a new one")
    threads.remember(thread_id)
    return json_response({"thread_id": thread_id}, 201)


async def run_thread(request: Request, thread_id: str, body: RunBody) -> Response:
    return await _run(request, thread_id, body.input, body.config, "/threads/{id}/runs")


async def resume_thread(request: Request, thread_id: str, body: ResumeBody) -> Response:
    return await _run(request, thread_id, Command(resume=body.resume), body.config, "/threads/{id}/resume")


async def stream_thread(request: Request, thread_id: str, body: StreamBody) -> Response:
    given = body.model_fields_set
    if "input" in given and "resume" in given:
        return json_error(422, "validation_error", "give either input (a new run) or resume (an answer), not both")
    modes = [body.stream_mode] if isinstance(body.stream_mode, str) else list(body.stream_mode)
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown or not modes:
        return json_error(422, "validation_error", f"stream_mode {unknown or modes!r}: choose from {list(STREAM_MODES)}")
    value = Command(resume=body.resume) if "resume" in given else body.input
    threads: Threads = request.app.state.threads
    refused = await _refusal(threads, thread_id, value)
    if refused is not None:
        return refused
    config = thread_config(thread_id, request_config(request, body.config))
    claim = threads.claim(thread_id)
    chunks = aiter(threads.graph.astream(value, config, stream_mode=modes))
    try:
        first: Any = await anext(chunks, None)
    except Exception as exc:
        threads.release(thread_id, claim)
        await _aclose(chunks)
        return _failure(exc, "/threads/{id}/stream")
    events = _stream_events(threads, thread_id, claim, first, chunks)
    # A response never sent (the client left first) never runs the stream's own release.
    weakref.finalize(events, threads.release, thread_id, claim)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def thread_state(request: Request, thread_id: str) -> Response:
    threads: Threads = request.app.state.threads
    snapshot = await threads.snapshot(thread_id)
    if not threads.known(thread_id, snapshot):
        return _not_found(thread_id)
    return json_response(_masked(thread_view(thread_id, snapshot)))


async def thread_history(
    request: Request, thread_id: str, limit: int | None = Query(default=None, ge=1, description="At most this many, newest first.")
) -> Response:
    threads: Threads = request.app.state.threads
    if not threads.known(thread_id, await threads.snapshot(thread_id)):
        return _not_found(thread_id)
    history = await threads.read(threads.graph.get_state_history, thread_config(thread_id))
    checkpoints = [checkpoint_view(s) for s in history[:limit]]
    return json_response(_masked({"thread_id": thread_id, "checkpoints": checkpoints}))


# =============================================================================== one run
async def _run(request: Request, thread_id: str, value: Any, requested: RequestConfig | None, where: str) -> Response:
    """Run ``value`` (input or a Command) on the thread, then answer with the thread."""
    threads: Threads = request.app.state.threads
    refused = await _refusal(threads, thread_id, value)
    if refused is not None:
        return refused
    config = thread_config(thread_id, request_config(request, requested))
    claim = threads.claim(thread_id)
    try:
        await threads.graph.ainvoke(value, config)
    except Exception as exc:
        return _failure(exc, where)
    finally:
        threads.release(thread_id, claim)
    return json_response(_masked(thread_view(thread_id, await threads.snapshot(thread_id))))


async def _refusal(threads: Threads, thread_id: str, value: Any) -> Response | None:
    """Why ``value`` cannot run on the thread now (404, 409, 422), or ``None`` when it can."""
    snapshot = await threads.snapshot(thread_id)
    if not threads.known(thread_id, snapshot):
        return _not_found(thread_id)
    if thread_id in threads.busy:
        return json_error(
            409, "thread_busy", f"thread {thread_id!r} is running another request; send this one when it has finished"
        )
    status = thread_status(snapshot)
    if isinstance(value, Command):
        if status != "interrupted":
            return json_error(
                409, "thread_not_paused",
                f"thread {thread_id!r} is not waiting for an answer (status: {status}); "
                f"POST /threads/{thread_id}/runs gives it new input",
            )
        return None
    if value is None and status == "new":
        return json_error(422, "validation_error", f"thread {thread_id!r} has not run yet: send input (an object of state keys)")
    if value is not None and not isinstance(value, dict):
        return json_error(
            422, "validation_error",
            f"input must be a JSON object of the graph's state keys (or null to continue the thread), got {type(value).__name__}",
        )
    unknown = _unknown_keys(threads.graph, value)
    if unknown:
        return json_error(
            422, "validation_error",
            f"input has keys {unknown} that the graph's state does not declare; its keys are {_state_keys(threads.graph)}",
        )
    return None


def _state_keys(graph: CompiledGraph) -> list[str] | None:
    """The keys the graph's state declares (``None``: any key)."""
    schema = graph.spec.schema
    return None if schema.open else sorted(schema.channels)


def _unknown_keys(graph: CompiledGraph, value: dict[str, Any] | None) -> list[str]:
    keys = _state_keys(graph)
    return [] if value is None or keys is None else sorted(k for k in value if k not in keys)


def _failure(exc: BaseException, where: str) -> Response:
    if isinstance(exc, GraphCheckpointError) and "already saved by another run" in str(exc):
        return json_error(409, "thread_busy", str(exc))
    return failure(exc, where)


def _not_found(thread_id: str) -> Response:
    return json_error(404, "thread_not_found", f"no thread {thread_id!r} here; create one with POST /threads")


# =============================================================================== streams
async def _stream_events(
    threads: Threads, thread_id: str, claim: object, first: Any, chunks: AsyncIterator[Any]
) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield sse("data", _masked(stream_item(*first)))
            async for mode, chunk in chunks:
                yield sse("data", _masked(stream_item(mode, chunk)))
        yield sse("end", _masked(thread_view(thread_id, await threads.snapshot(thread_id))))
    except Exception as exc:
        yield _error_event(exc, "/threads/{id}/stream")
    finally:
        threads.release(thread_id, claim)
        await _aclose(chunks)


def stream_item(mode: str, chunk: Any) -> dict[str, Any]:
    """One streamed chunk as the client reads it; a model message names the node that ran it."""
    if mode == "messages":
        message, meta = chunk
        return {"mode": mode, "chunk": message, "node": meta.get("langgraph_node")}
    return {"mode": mode, "chunk": chunk}


# =============================================================================== views
def thread_status(snapshot: StateSnapshot | None) -> str:
    if snapshot is None:
        return "new"
    if snapshot.interrupts:
        return "interrupted"
    return "pending" if snapshot.next else "done"


def thread_view(thread_id: str, snapshot: StateSnapshot | None) -> dict[str, Any]:
    """The thread as ``GET /threads/{id}/state`` shows it."""
    if snapshot is None:
        return {
            "thread_id": thread_id, "status": "new", "values": {}, "next": [], "interrupts": [],
            "checkpoint_id": None, "step": None, "metadata": {}, "created_at": None,
        }
    return {
        "thread_id": thread_id,
        "status": thread_status(snapshot),
        "values": snapshot.values,
        "next": list(snapshot.next),
        "interrupts": [{"node": i.node, "value": i.value} for i in snapshot.interrupts],
        "checkpoint_id": str(snapshot.step),
        "step": snapshot.step,
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
    }


def checkpoint_view(snapshot: StateSnapshot) -> dict[str, Any]:
    return {
        "checkpoint_id": str(snapshot.step),
        "step": snapshot.step,
        "values": snapshot.values,
        "next": list(snapshot.next),
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
    }


def _masked(payload: Any) -> Any:
    """``payload`` as JSON data with secrets masked, as run events are before they leave."""
    return default_redactor(to_json_safe(payload))
