"""``stream_mode="messages"``: the chat-model output of the graph's nodes as it comes.

The graph's steps run on a worker thread under a listener (``maru.core.listen``); the listener
turns the events of the chat models that the nodes call into ``(chunk, {"langgraph_node": …})``
pairs and puts them, with the chunks of the other modes, on one queue that the caller's generator
reads, so tokens arrive while the node is still running. A model a node streams gives its tokens;
a model a node invokes gives its whole message when it ends (a model runs token by token only when
it is streamed), so a node that can do either asks :func:`tokens_wanted` (true while a
``"messages"`` stream runs it) and streams its model then. A stream closed early stops the worker
before its next step.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..core import RunEvent, listen
from ..core.events import RUN_ID, active_state, run_id_str

MESSAGES = "messages"
_DONE = object()
_tokens_wanted: contextvars.ContextVar[bool] = contextvars.ContextVar("maru_graph_tokens", default=False)


def tokens_wanted() -> bool:
    """Whether the node running now is read by a ``"messages"`` stream: then streaming its model
    (instead of invoking it) lets the reader see the tokens as they come."""
    return _tokens_wanted.get()


class _Messages:
    """The listener: which runs are the graph's nodes, and which model runs streamed."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        self.put = put
        state = active_state()
        parent = state[RUN_ID] if state is not None else None
        self.parent = None if parent is None else run_id_str(parent)  # the graph's own run, when traced
        self.nodes: dict[str, str] = {}  # run id -> node name
        self.steps: set[str | None] = {self.parent}  # the graph's run and its supersteps': nodes start under them
        self.streamed: set[str] = set()

    def __call__(self, event: RunEvent) -> None:
        if event.phase == "start" and event.parent_id in self.steps:
            if event.metadata.get("maru_graph") == "step":  # a superstep's run (graph/traced.py)
                self.steps.add(event.run_id)
            else:
                self.nodes[event.run_id] = event.name
        elif event.kind == "chat_model" and event.phase in ("stream", "end"):
            node = next((self.nodes[p] for p in event.parent_ids if p in self.nodes), None)
            if node is None:
                return
            if event.phase == "stream":
                self.streamed.add(event.run_id)
                self.put((event.data["chunk"], {"langgraph_node": node}))
            elif event.run_id not in self.streamed:
                self.put((event.data["output"], {"langgraph_node": node}))


def stream_live(steps: Callable[[Callable[[], bool]], Iterator[Any]], single: bool) -> Iterator[Any]:
    """Run ``steps(stopped)`` (the other modes' chunks) on a worker thread and yield its chunks and
    the nodes' model messages in the order they happen; ``single``: only messages were asked for,
    so they are yielded bare, not as ``("messages", …)``."""
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stop = threading.Event()

    def put_message(pair: Any) -> None:
        items.put(pair if single else (MESSAGES, pair))

    def work() -> None:
        _tokens_wanted.set(True)  # in the worker's own context copy: nothing outside sees it
        try:
            with listen(_Messages(put_message)):
                for chunk in steps(stop.is_set):
                    items.put(chunk)
        except BaseException as exc:  # handed to the caller's thread
            items.put(_Raised(exc))
        finally:
            items.put(_DONE)

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), name="maru-graph-stream", daemon=True).start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
