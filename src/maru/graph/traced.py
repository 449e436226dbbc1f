"""A traced graph run: the call's start and each superstep as runs of their own, so a trace reads
as the graph ran.

Only when someone listens (a tracer, ``listen``, ``astream_events``): an untraced call never gets
here. The tree under the graph's run is

- ``input`` / ``resume`` / ``continue`` (with a checkpointer): the thread taken up and the input,
  the resume answer or nothing written; its output says which checkpoint the call starts after and
  which it saved;
- ``step N`` for each superstep (``N`` is the thread's step, the one ``idempotency_key`` uses; the
  call's count without a checkpointer): its input names the nodes due, its children are the nodes
  (and their models and tools) and the routers of conditional edges, its output holds each node's
  update, the nodes due next and the checkpoints the step saved;
- ``interrupt`` under the step a node paused in: the node's question as input.

Every such run carries ``metadata["maru_graph"]`` (``input``, ``resume``, ``continue``, ``step``,
``interrupt``) and ``thread_id``; the nodes get ``langgraph_step`` and ``thread_id`` in their
metadata. A saved checkpoint shows as ``{"thread_id", "step", "source", "writers", "next",
"created_at"}`` in the ``checkpoints`` list of the run that saved it — what the trace viewer lists,
so it never needs the saver's database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..core import RunConfig, Runnable
from .checkpoint import Checkpoint, Writes
from .interrupts import Command
from .run import Run

if TYPE_CHECKING:
    from .compiled import CompiledGraph

MARKER = "maru_graph"
"""The metadata key that marks the runs a traced graph adds around its nodes."""

Step = Callable[[list[str], Run, "RunConfig | None"], Writes]
AStep = Callable[[list[str], Run, "RunConfig | None"], Awaitable[Writes]]


class GraphPart(Runnable[Any, Any]):
    """One piece of a traced graph run (its start, a superstep, an interrupt) as a run of its own."""

    def __init__(self, fn: Callable[[Any], Any], afn: Callable[[Any], Awaitable[Any]] | None = None) -> None:
        self.fn = fn
        self.afn = afn

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self.fn(input)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return await self.afn(input) if self.afn is not None else self.fn(input)


def begin(graph: CompiledGraph, input: Any, config: RunConfig | None) -> Run:
    """``graph``'s call started as a traced run: with a checkpointer, the thread taken up as a run."""
    run = Run(graph.spec, graph.fixed_next, graph.checkpointer, config)
    if run.saver is None:
        run.begin(input)
        return run
    run.saved = []

    def start(given: Any) -> dict[str, Any]:
        run.begin(input)
        return _started(run)

    kind = _begin_kind(input)
    GraphPart(start).invoke(_shown(input), _part_config(config, kind, run, kind))
    return run


async def abegin(graph: CompiledGraph, input: Any, config: RunConfig | None, off_loop: Callable[..., Awaitable[None]]) -> Run:
    run = Run(graph.spec, graph.fixed_next, graph.checkpointer, config)
    if run.saver is None:
        run.begin(input)
        return run
    run.saved = []

    async def start(given: Any) -> dict[str, Any]:
        await off_loop(run, run.begin, input)
        return _started(run)

    kind = _begin_kind(input)
    await GraphPart(lambda given: None, start).ainvoke(_shown(input), _part_config(config, kind, run, kind))
    return run


def superstep(step: Step, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
    """One superstep (``step``: run the nodes, commit) as a run named ``step N``."""
    n, node_config = _step_config(run, config)

    done: list[Writes] = []

    def body(given: Any) -> dict[str, Any]:
        done.append(step(tasks, run, node_config))
        _interrupts(run, node_config)
        return _stepped(run, done[0])

    GraphPart(body).invoke({"nodes": tasks}, _part_config(node_config, "step", run, f"step {n}"))
    return done[0]


async def asuperstep(step: AStep, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
    n, node_config = _step_config(run, config)

    done: list[Writes] = []

    async def body(given: Any) -> dict[str, Any]:
        done.append(await step(tasks, run, node_config))
        _interrupts(run, node_config)
        return _stepped(run, done[0])

    await GraphPart(lambda given: None, body).ainvoke({"nodes": tasks}, _part_config(node_config, "step", run, f"step {n}"))
    return done[0]


# --------------------------------------------------------------------------- what the runs show
def _begin_kind(input: Any) -> str:
    return "resume" if isinstance(input, Command) else "continue" if input is None else "input"


def _shown(input: Any) -> Any:
    """A call's input as its start run shows it: a resume by its answer."""
    return {"resume": input.resume} if isinstance(input, Command) else input


def _started(run: Run) -> dict[str, Any]:
    """The start run's output: where the thread stood, what is due, what was saved."""
    shown: dict[str, Any] = {"next": list(run.next)}
    if run.interrupts:
        shown["interrupts"] = [{"node": i.node, "value": i.value} for i in run.interrupts]
    shown["checkpoints"] = _drain(run)
    return shown


def _stepped(run: Run, writes: Writes) -> dict[str, Any]:
    """A step run's output: each node's (normalized) update, what is due next, what was saved."""
    shown: dict[str, Any] = {"updates": dict(writes), "next": list(run.next)}
    if run.interrupts:
        shown["interrupts"] = [{"node": i.node, "value": i.value} for i in run.interrupts]
    shown["checkpoints"] = _drain(run)
    return shown


def _drain(run: Run) -> list[dict[str, Any]]:
    saved, run.saved = run.saved or [], []
    return [_checkpoint(run.thread_id, cp) for cp in saved]


def _checkpoint(thread_id: str, cp: Checkpoint) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "step": cp.step,
        "source": cp.metadata.get("source", ""),
        "writers": [writer for writer, _ in cp.writes],
        "next": list(cp.next),
        "created_at": cp.created_at,
    }


def _interrupts(run: Run, config: RunConfig | None) -> None:
    """Each question a node of this step paused on, as an ``interrupt`` run under the step."""
    for paused in run.interrupts:
        meta = {"langgraph_node": paused.node}
        GraphPart(_Paused(paused.node)).invoke(paused.value, _part_config(config, "interrupt", run, "interrupt", meta))


class _Paused:
    """An interrupt run's output: the node that waits for an answer."""

    def __init__(self, node: str) -> None:
        self.node = node

    def __call__(self, question: Any) -> dict[str, Any]:
        return {"node": self.node, "paused": True}


# --------------------------------------------------------------------------- configs
def _step_config(run: Run, config: RunConfig | None) -> tuple[int, RunConfig]:
    """The step's number and the config its nodes get: the caller's, with the step in the metadata."""
    n = run.done_step + 1 if run.saver is not None else run.steps_run
    meta = {**((config or {}).get("metadata") or {}), "langgraph_step": n}
    if run.saver is not None:
        meta["thread_id"] = run.thread_id
    return n, {**(config or {}), "metadata": meta}  # type: ignore[typeddict-item]


def _part_config(
    config: RunConfig | None, kind: str, run: Run, name: str, extra: dict[str, Any] | None = None
) -> RunConfig:
    meta = {**((config or {}).get("metadata") or {}), MARKER: kind, **(extra or {})}
    if run.saver is not None:
        meta["thread_id"] = run.thread_id
    return {**(config or {}), "metadata": meta, "run_name": name}  # type: ignore[typeddict-item]
