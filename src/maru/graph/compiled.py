"""A compiled graph: runs supersteps until no node is due, as one maru runnable.

A superstep runs every due node on the same state (here: inline, on the pool, or gathered), then
hands their outputs to the call's :class:`~maru.graph.run.Run`, which merges them in declaration
order, saves a checkpoint when there is a checkpointer, and works out the nodes due next. Nodes
are invoked as steps, so when someone listens each node is a child run of its superstep's run,
itself a child of the graph's (``graph/traced.py``); when nobody does, a step is a few dict
operations around the node calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import RunConfig, Runnable
from ..core.events import current_run
from ..core.executor import run_bounded, run_in_thread
from . import traced
from .builder import Spec
from .checkpoint import CheckpointSaver, Writes
from .errors import GraphError
from .interrupts import INTERRUPT_KEY, GraphInterrupt, Interrupt, arun_as, run_as
from .live import MESSAGES, stream_live
from .mermaid import to_mermaid
from .run import PENDING, Run, stored, thread_of
from .state import INPUT, SNAPSHOT

STREAM_MODES = ("values", "updates", MESSAGES)


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """A thread's state at one checkpoint: ``values``, the nodes due ``next`` (empty when the run
    ended), the step, what wrote it (``metadata["source"]``: input or loop) and when."""

    values: dict[str, Any]
    next: tuple[str, ...]
    step: int
    metadata: dict[str, Any]
    created_at: float
    writes: Writes
    interrupts: tuple[Interrupt, ...] = ()
    """What the thread is paused on (latest state only)."""


class CompiledGraph(Runnable[Any, dict[str, Any]]):
    """What ``StateGraph.compile()`` returns. ``invoke(input)`` returns the final state;
    ``stream(input, stream_mode="values" | "updates" | [both])`` yields the state after each
    step, or each node's update as ``{node: update}`` (with a list of modes, ``(mode, chunk)``).

    Config: ``recursion_limit`` (supersteps, default 25) and, with a checkpointer,
    ``configurable.thread_id``."""

    def __init__(self, spec: Spec, *, checkpointer: CheckpointSaver | None = None, name: str | None = None) -> None:
        self.spec = spec
        self.fixed_next = spec.fixed_next
        self.checkpointer = checkpointer
        self._name = name or "StateGraph"
        self.io_bound = any(node.io_bound for node in spec.nodes.values())

    def __repr__(self) -> str:
        return f"CompiledGraph({list(self.spec.nodes)})"

    @property
    def nodes(self) -> dict[str, Runnable[Any, Any]]:
        return dict(self.spec.nodes)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (solid: edges; dotted: conditional edges)."""
        return to_mermaid(self.spec)

    # ----------------------------------------------------------------- running
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        if current_run.get() is not None:  # someone listens: the start and each step are runs too
            return self._invoke_traced(input, config)
        run = self._start(input, config)
        while tasks := run.due():
            run.commit(self._execute(tasks, run, config))
        return run.output()

    def _invoke_traced(self, input: Any, config: RunConfig | None) -> dict[str, Any]:
        run = traced.begin(self, input, config)
        while tasks := run.due():
            traced.superstep(self._step, tasks, run, config)
        return run.output()

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        watched = current_run.get() is not None
        run = await (traced.abegin(self, input, config, _off_loop) if watched else self._astart(input, config))
        while tasks := run.due():
            if watched:
                await traced.asuperstep(self._astep, tasks, run, config)
            else:
                await self._astep(tasks, run, config)
        return run.output()

    def _step(self, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
        """One superstep: run the due nodes, then merge and save what they wrote."""
        writes = self._execute(tasks, run, config)
        run.commit(writes)
        return writes

    async def _astep(self, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
        writes = await self._aexecute(tasks, run, config)
        await _off_loop(run, run.commit, writes)
        return writes

    def _stream(
        self, input: Any, config: RunConfig | None = None, *, stream_mode: str | Sequence[str] = "values", **kwargs: Any
    ) -> Iterator[Any]:
        modes = _modes(stream_mode)
        if modes == MESSAGES or MESSAGES in modes:  # the steps go to a worker, under a listener
            others = () if isinstance(modes, str) else tuple(m for m in modes if m != MESSAGES)
            return stream_live(lambda stopped: self._steps(input, config, others, stopped), modes == MESSAGES)
        return self._steps(input, config, modes, None)

    def _steps(
        self, input: Any, config: RunConfig | None, modes: tuple[str, ...] | str, stopped: Callable[[], bool] | None
    ) -> Iterator[Any]:
        watched = current_run.get() is not None
        run = traced.begin(self, input, config) if watched else self._start(input, config)
        yield from _chunks(modes, run, run.started)
        while (stopped is None or not stopped()) and (tasks := run.due()):
            writes = traced.superstep(self._step, tasks, run, config) if watched else self._step(tasks, run, config)
            yield from _chunks(modes, run, writes)

    async def _astream(
        self, input: Any, config: RunConfig | None = None, *, stream_mode: str | Sequence[str] = "values", **kwargs: Any
    ) -> AsyncIterator[Any]:
        modes = _modes(stream_mode)
        if modes == MESSAGES or MESSAGES in modes:  # the live sync stream, read off the event loop
            live, end = self._stream(input, config, stream_mode=stream_mode), object()
            while (item := await run_in_thread(next, live, end)) is not end:
                yield item
            return
        watched = current_run.get() is not None
        run = await (traced.abegin(self, input, config, _off_loop) if watched else self._astart(input, config))
        for chunk in _chunks(modes, run, run.started):
            yield chunk
        while tasks := run.due():
            if watched:
                writes = await traced.asuperstep(self._astep, tasks, run, config)
            else:
                writes = await self._astep(tasks, run, config)
            for chunk in _chunks(modes, run, writes):
                yield chunk

    def _start(self, input: Any, config: RunConfig | None) -> Run:
        run = Run(self.spec, self.fixed_next, self.checkpointer, config)
        run.begin(input)
        return run

    async def _astart(self, input: Any, config: RunConfig | None) -> Run:
        run = Run(self.spec, self.fixed_next, self.checkpointer, config)
        await _off_loop(run, run.begin, input)
        return run

    def _execute(self, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
        """Run one step's nodes: inline one by one, or on the shared pool when any waits on I/O."""
        nodes = self.spec.nodes
        view = run.view()
        if run.saver is None:  # no thread: nothing for interrupt() or idempotency_key() to read
            if len(tasks) == 1:
                try:
                    return [(tasks[0], nodes[tasks[0]].invoke(view, config))]
                except GraphInterrupt as exc:
                    return run.settle(tasks, [(False, exc)])

            def call(i: int) -> Any:
                return nodes[tasks[i]].invoke(view, config)
        else:
            def call(i: int) -> Any:
                return run_as(run.task(tasks[i]), nodes[tasks[i]].invoke, view, config)

        if any(nodes[t].io_bound for t in tasks):
            return run.settle(tasks, run_bounded(call, len(tasks), None))
        results: list[tuple[bool, Any]] = []
        for i in range(len(tasks)):
            try:
                results.append((True, call(i)))
            except GraphInterrupt as exc:  # the step's other nodes still run
                results.append((False, exc))
            except BaseException as exc:
                results.append((False, exc))
                break
        return run.settle(tasks[: len(results)], results)

    async def _aexecute(self, tasks: list[str], run: Run, config: RunConfig | None) -> Writes:
        nodes = self.spec.nodes
        view = run.view()
        if run.saver is None:
            calls = [nodes[t].ainvoke(view, config) for t in tasks]
        else:
            calls = [arun_as(run.task(t), nodes[t].ainvoke, view, config) for t in tasks]
        if len(calls) == 1:
            try:
                return [(tasks[0], await calls[0])]
            except GraphInterrupt as exc:
                return run.settle(tasks, [(False, exc)])
        outputs = await asyncio.gather(*calls, return_exceptions=True)
        return run.settle(tasks, [(not isinstance(out, BaseException), out) for out in outputs])

    # ----------------------------------------------------------------- threads
    def get_state(self, config: RunConfig) -> StateSnapshot | None:
        """The thread's latest state (``None`` for a thread with no checkpoint), read the way a
        call reads it: the snapshot and the steps after it."""
        run = Run(self.spec, self.fixed_next, self.checkpointer, config)
        run.begin(None, allow_empty=True)
        last = run.last
        if last is None:
            return None
        if last.writes and last.writes[0][0] == SNAPSHOT:  # it stands for its step: show that step's own record
            last = run.saver.records(run.thread_id, last.step - 1)[0]  # type: ignore[union-attr]
        return StateSnapshot(
            run.state, run.next, last.step, last.metadata, last.created_at, last.writes, tuple(run.interrupts)
        )

    def get_state_history(self, config: RunConfig) -> list[StateSnapshot]:
        """The thread's state at every checkpoint, newest first."""
        return self._history(config)[::-1]

    def update_state(self, config: RunConfig, values: Any, as_node: str | None = None) -> RunConfig:
        """Write ``values`` into the thread's state as one more checkpoint (to correct or approve
        what a run left). With ``as_node`` the update counts as that node's: the nodes its edges
        lead to become the ones due; without, the nodes due stay as they were."""
        if as_node is not None and as_node not in self.spec.nodes:
            raise GraphError(f"update_state(as_node={as_node!r}): no such node; the nodes are {list(self.spec.nodes)}")
        run = Run(self.spec, self.fixed_next, self.checkpointer, config)
        run.begin(None, allow_empty=True)
        run.update(values, as_node)
        return config

    def fork(self, config: RunConfig, step: int, thread_id: str) -> RunConfig:
        """Copy the thread as it was at ``step`` (a step of :meth:`get_state_history`) to a new
        thread, and return the new thread's config: ``invoke(None, it)`` runs on from there, or
        with input starts a new turn — time travel that leaves the original thread as it is."""
        saver, source = thread_of(self.checkpointer, config)
        if saver.records(thread_id) or saver.snapshot(thread_id):
            raise GraphError(f"thread {thread_id!r} already has checkpoints; fork into a new thread_id")
        base, records = stored(saver, source)
        if base is not None and step < base.step:
            raise GraphError(f"thread {source!r} was pruned up to step {base.step}; fork from that step or a later one")
        kept = [cp for cp in records if cp.step <= step]
        at_step = kept[-1] if kept else base
        if at_step is None or at_step.step != step or at_step.metadata.get("source") == PENDING:
            raise GraphError(f"thread {source!r} has no checkpoint at step {step}; get_state_history lists them")
        if base is not None:
            saver.put_snapshot(thread_id, base)
        for cp in kept:
            saver.put(thread_id, cp)
        return {**config, "configurable": {**(config.get("configurable") or {}), "thread_id": thread_id}}

    def _history(self, config: RunConfig) -> list[StateSnapshot]:
        saver, thread_id = thread_of(self.checkpointer, config)
        base, records = stored(saver, thread_id)
        state: dict[str, Any] = {}
        snapshots = []
        if base is not None:  # pruned: history starts at the snapshot
            state = dict(base.writes[0][1] or {})
            snapshots.append(StateSnapshot(state, base.next, base.step, base.metadata, base.created_at, []))
        for cp in records:
            if cp.metadata.get("source") == PENDING:
                continue
            state = self.spec.schema.apply(state, cp.writes)
            snapshots.append(StateSnapshot(state, cp.next, cp.step, cp.metadata, cp.created_at, cp.writes))
        return snapshots


async def _off_loop(run: Run, step: Any, *args: Any) -> None:
    """``step(*args)`` (a step that may read or write checkpoints) on the shared pool when the
    saver waits on the network, so the event loop goes on meanwhile; inline otherwise."""
    if run.saver is not None and run.saver.io_bound:
        await run_in_thread(step, *args)
    else:
        step(*args)


def _modes(stream_mode: str | Sequence[str]) -> tuple[str, ...] | str:
    for mode in [stream_mode] if isinstance(stream_mode, str) else stream_mode:
        if mode not in STREAM_MODES:
            raise GraphError(f"unknown stream_mode {mode!r}; this graph streams {list(STREAM_MODES)}")
    return stream_mode if isinstance(stream_mode, str) else tuple(stream_mode)


def _chunks(modes: tuple[str, ...] | str, run: Run, writes: Writes) -> Iterator[Any]:
    """What one step shows: the state (values) or each writer's update (updates). The input step
    shows in values mode only, as the state the run starts from. A paused step shows its
    interrupts (and, as updates, what its finished nodes wrote), not a state."""
    paused = run.interrupts
    for mode in (modes,) if isinstance(modes, str) else modes:
        if mode == "values":
            chunks: list[Any] = [run.state] if writes and not paused else []
        else:
            chunks = [{w: u} for w, u in writes if w != INPUT]
        if paused:
            chunks.append({INTERRUPT_KEY: list(paused)})
        for chunk in chunks:
            yield chunk if isinstance(modes, str) else (mode, chunk)
