"""A compiled graph: runs supersteps until no node is due, as one maru runnable.

A superstep runs every due node on the same state, then merges their updates in declaration
order (``Schema.apply``), saves a checkpoint when there is a checkpointer, and works out the nodes
due next from the edges of the nodes that ran. Nodes are invoked as steps, so when someone
listens each node is a child run of the graph's run; when nobody does, a step is a few dict
operations around the node calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import RunConfig, Runnable
from ..core.executor import run_bounded, run_in_thread
from .builder import END, START, Branch, Spec
from .checkpoint import Checkpoint, CheckpointSaver, Writes, new_checkpoint
from .errors import GraphError, GraphRecursionError
from .interrupts import (
    INTERRUPT_KEY,
    Command,
    GraphInterrupt,
    Interrupt,
    Task,
    arun_as,
    run_as,
)
from .mermaid import to_mermaid
from .state import INPUT, SNAPSHOT

DEFAULT_RECURSION_LIMIT = 25
UPDATE = "__update__"
"""The writer of an ``update_state`` not made as a node."""
PENDING = "pending"
"""The source of a checkpoint that holds a failed step's finished nodes, not a whole step."""
STREAM_MODES = ("values", "updates")


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
        run = self._start(input, config)
        while tasks := run.due():
            run.commit(self._execute(tasks, run, config))
        return run.output()

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        run = await self._astart(input, config)
        while tasks := run.due():
            await _off_loop(run, run.commit, await self._aexecute(tasks, run, config))
        return run.output()

    def _stream(
        self, input: Any, config: RunConfig | None = None, *, stream_mode: str | Sequence[str] = "values", **kwargs: Any
    ) -> Iterator[Any]:
        modes = _modes(stream_mode)
        run = self._start(input, config)
        yield from _chunks(modes, run, run.started)
        while tasks := run.due():
            writes = self._execute(tasks, run, config)
            run.commit(writes)
            yield from _chunks(modes, run, writes)

    async def _astream(
        self, input: Any, config: RunConfig | None = None, *, stream_mode: str | Sequence[str] = "values", **kwargs: Any
    ) -> AsyncIterator[Any]:
        modes = _modes(stream_mode)
        run = await self._astart(input, config)
        for chunk in _chunks(modes, run, run.started):
            yield chunk
        while tasks := run.due():
            writes = await self._aexecute(tasks, run, config)
            await _off_loop(run, run.commit, writes)
            for chunk in _chunks(modes, run, writes):
                yield chunk

    def _start(self, input: Any, config: RunConfig | None) -> _Run:
        run = _Run(self.spec, self.fixed_next, self.checkpointer, config)
        run.begin(input)
        return run

    async def _astart(self, input: Any, config: RunConfig | None) -> _Run:
        run = _Run(self.spec, self.fixed_next, self.checkpointer, config)
        await _off_loop(run, run.begin, input)
        return run

    def _execute(self, tasks: list[str], run: _Run, config: RunConfig | None) -> Writes:
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

    async def _aexecute(self, tasks: list[str], run: _Run, config: RunConfig | None) -> Writes:
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
        run = _Run(self.spec, self.fixed_next, self.checkpointer, config)
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
        run = _Run(self.spec, self.fixed_next, self.checkpointer, config)
        run.begin(None, allow_empty=True)
        run.update(values, as_node)
        return config

    def fork(self, config: RunConfig, step: int, thread_id: str) -> RunConfig:
        """Copy the thread as it was at ``step`` (a step of :meth:`get_state_history`) to a new
        thread, and return the new thread's config: ``invoke(None, it)`` runs on from there, or
        with input starts a new turn — time travel that leaves the original thread as it is."""
        saver, source = _thread_of(self.checkpointer, config)
        if saver.records(thread_id) or saver.snapshot(thread_id):
            raise GraphError(f"thread {thread_id!r} already has checkpoints; fork into a new thread_id")
        base, records = _stored(saver, source)
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
        saver, thread_id = _thread_of(self.checkpointer, config)
        base, records = _stored(saver, thread_id)
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


class _Run:
    """One run's moving parts: the state, the nodes due, the step count and the thread it saves to."""

    def __init__(
        self, spec: Spec, fixed_next: dict[str, tuple[str, ...]], checkpointer: CheckpointSaver | None,
        config: RunConfig | None,
    ) -> None:
        self.spec = spec
        self.fixed_next = fixed_next
        self.schema = spec.schema
        self.config = config
        self.limit: int = (config or {}).get("recursion_limit", DEFAULT_RECURSION_LIMIT)  # type: ignore[assignment]
        self.saver: CheckpointSaver | None = None
        self.thread_id = ""
        if checkpointer is not None:
            self.saver, self.thread_id = _thread_of(checkpointer, config)
        self.state: dict[str, Any] = {}
        self.next: tuple[str, ...] = ()
        self.waiting: dict[str, list[str]] = {}
        self.step = 0  # the thread's next checkpoint number
        self.steps_run = 0  # supersteps run by this call, for the recursion limit
        self.started: Writes = []
        self.pending: Writes = []  # updates of this step's nodes that finished before another failed
        self.interrupts: list[Interrupt] = []  # the step is paused on these
        self.answers: dict[str, list[Any]] = {}  # resume values for the paused nodes, in order
        self.last: Checkpoint | None = None  # the thread's latest checkpoint (or snapshot), once restored
        self.done_step = -1  # the thread's latest whole step: the one running is done_step + 1

    def begin(self, input: Any, *, allow_empty: bool = False) -> None:
        """Take up the thread where it stopped (with a checkpointer), then the input: ``None``
        continues the thread's pending nodes; anything else is written to the state and starts
        from ``START``."""
        if self.saver is not None:
            self._restore(self.saver)
        if isinstance(input, Command):
            self._resume(input.resume)
            return
        if input is None:
            if (self.saver is None or self.step == 0) and not allow_empty:
                raise GraphError(
                    "invoke(None) continues a saved thread, and there is none here; pass the "
                    "graph's input (a dict of state keys), or a thread_id that has checkpoints"
                )
            return
        update = self.schema.normalize(INPUT, input)
        self.started = [(INPUT, update)]
        self.pending, self.interrupts, self.answers = [], [], {}  # a new input drops what a step left
        self.state = self.schema.apply(self.state, self.started)
        self.waiting = {}
        self.next = self._after(START)
        self._save(self.started, "input")

    def _restore(self, saver: CheckpointSaver) -> None:
        """The thread's state: its snapshot, if any, then the updates of the steps after it."""
        snapshot, checkpoints = saver.load(self.thread_id)
        self.last = snapshot
        if snapshot is not None:
            self.done_step = snapshot.step
            self.state = dict(snapshot.writes[0][1] or {})
            self.next, self.waiting = snapshot.next, {k: list(v) for k, v in snapshot.waiting.items()}
            self.step = snapshot.step + 1
        for cp in checkpoints:
            if cp.metadata.get("source") == PENDING:
                self.pending.extend(cp.writes)
                self.interrupts = [Interrupt(value, node) for node, value in cp.metadata.get("interrupts", ())]
                self.answers = cp.metadata.get("answers", self.answers)
                continue
            self.state = self.schema.apply(self.state, cp.writes)
            self.pending, self.interrupts, self.answers = [], [], {}
            self.last, self.done_step = cp, cp.step
            self.next, self.waiting = cp.next, {k: list(v) for k, v in cp.waiting.items()}
        if checkpoints:
            self.step = checkpoints[-1].step + 1

    def update(self, values: Any, as_node: str | None) -> None:
        """An update from outside the run (``update_state``), saved as its own checkpoint."""
        writes = [(as_node or UPDATE, self.schema.normalize(as_node or UPDATE, values))]
        self.state = self.schema.apply(self.state, writes)
        if as_node is not None:
            self.pending = []
            self.next = tuple(self.spec.order(set(self._after(as_node))))
        self._save(writes, "update")

    def _resume(self, value: Any) -> None:
        """Give the paused nodes their answer (one value, or a dict by node for several)."""
        if self.saver is None or not self.interrupts:
            raise GraphError(
                "Command(resume=...) answers a paused thread, and this one is not paused; pass the "
                "thread_id of a run that returned __interrupt__"
            )
        paused = list(dict.fromkeys(i.node for i in self.interrupts))
        if len(paused) == 1:
            given = {paused[0]: value}
        elif isinstance(value, dict) and set(value) <= set(paused):
            given = value
        else:
            raise GraphError(f"nodes {paused} are paused: resume them with Command(resume={{node: answer, ...}})")
        self.answers = {**self.answers, **{n: [*self.answers.get(n, ()), v] for n, v in given.items()}}
        self.interrupts = []
        self._save([], PENDING, {"answers": self.answers})

    def task(self, node: str) -> Task:
        """What ``node`` runs as in this step: the thread, the step, its answers."""
        return Task(self.thread_id, self.done_step + 1, node, self.answers.get(node, []))

    def output(self) -> dict[str, Any]:
        """The state, with the interrupts of a paused run under ``__interrupt__``."""
        return {**self.state, INTERRUPT_KEY: list(self.interrupts)} if self.interrupts else self.state

    def view(self) -> Any:
        return self.schema.view(self.state)

    def due(self) -> list[str]:
        """The nodes of the next superstep (none: the run is over); past the limit, an error."""
        if not self.next or self.interrupts:
            return []
        if self.steps_run >= self.limit:
            raise GraphRecursionError(
                f"the graph ran {self.limit} supersteps without reaching END (next: {list(self.next)}); "
                "if the loop is meant to run longer, raise config={'recursion_limit': n}, otherwise give "
                "the loop's conditional edge a way to END; the error's .state holds the state",
                state=self.state, next=self.next, limit=self.limit,
            )
        self.steps_run += 1
        if self.pending:
            finished = {writer for writer, _ in self.pending}
            return [n for n in self.next if n not in finished]
        return list(self.next)

    def settle(self, tasks: list[str], results: list[tuple[bool, Any]]) -> Writes:
        """Nodes' results as writes; when one failed, keep the others' and raise its error; when
        some paused, keep the others' and pause the run (no writes: the step is not over)."""
        done = [(t, value) for t, (ok, value) in zip(tasks, results, strict=True) if ok]
        paused = [Interrupt(v.value, t) for t, (ok, v) in zip(tasks, results, strict=True) if isinstance(v, GraphInterrupt)]
        for ok, value in results:
            if not ok and not isinstance(value, GraphInterrupt):
                self.keep(done)
                raise value
        if paused:
            if self.saver is None:  # nowhere to wait: up to the graph this one is a node of, or the caller
                raise GraphInterrupt(paused[0].value)
            self.keep(done)
            self.interrupts = paused
            self._save([], PENDING, {"interrupts": [[i.node, i.value] for i in paused], "answers": self.answers})
        return done

    def keep(self, done: Writes) -> None:
        """Save the updates of nodes that finished in a step that failed, so that resuming the
        thread runs only the others (a finished node never runs twice)."""
        if self.saver is None or not done:
            return
        writes = [(writer, self.schema.normalize(writer, out)) for writer, out in done]
        self.pending.extend(writes)
        self._save(writes, PENDING)

    def commit(self, outputs: Writes) -> None:
        """Merge a step's node outputs, save them, and decide what runs next."""
        if self.interrupts:  # paused: the step goes on when the thread is resumed
            return
        if self.answers:
            self.answers = {}
        normalize = self.schema.normalize
        writes = [(writer, normalize(writer, out)) for writer, out in outputs]
        if self.pending:  # the step resumed: merge with what its finished nodes wrote, in order
            writes = sorted([*self.pending, *writes], key=lambda w: self.spec.rank[w[0]])
            self.pending = []
        self.state = self.schema.apply(self.state, writes)
        if len(writes) == 1 and (fixed := self.fixed_next.get(writes[0][0])) is not None:
            self.next = fixed
        else:
            due: set[str] = set()
            for writer, _ in writes:
                due.update(self._after(writer))
            self.next = tuple(self.spec.order(due))
        self._save(writes, "loop")
        outputs[:] = writes  # the normalized updates are what streams show

    def _after(self, node: str) -> tuple[str, ...]:
        """The nodes ``node``'s edges lead to, given the state after its step."""
        spec = self.spec
        targets = list(spec.edges.get(node, ()))
        for branch in spec.branches.get(node, ()):
            targets.extend(self._route(node, branch))
        for sources, target in spec.joins:
            if node in sources:
                seen = self.waiting.setdefault(target, [])
                if node not in seen:
                    seen.append(node)
                if len(seen) == len(sources):
                    del self.waiting[target]
                    targets.append(target)
        return tuple(t for t in targets if t != END)

    def _route(self, node: str, branch: Branch) -> list[str]:
        answer = branch.router.invoke(self.view(), self.config)
        answers = answer if isinstance(answer, list | tuple) else [answer]
        targets = []
        for a in answers:
            target = branch.path_map.get(a) if branch.path_map is not None else a
            if target != END and target not in self.spec.nodes:
                raise GraphError(
                    f"the conditional edge after {node!r} chose {a!r}, which is not a node"
                    f"{' in its path_map' if branch.path_map is not None else ''}; "
                    f"the nodes are {list(self.spec.nodes)} (or END)"
                )
            targets.append(target)
        return targets

    def _save(self, writes: Writes, source: str, extra: dict[str, Any] | None = None) -> None:
        if self.saver is None:
            return
        waiting = {k: list(v) for k, v in self.waiting.items()}
        self.saver.put(self.thread_id, new_checkpoint(self.step, writes, self.next, waiting, source, extra))
        if source != PENDING:
            self.done_step = self.step
        every = self.saver.snapshot_every
        if every and source != PENDING and (self.step + 1) % every == 0:
            snapshot = new_checkpoint(self.step, [(SNAPSHOT, self.state)], self.next, waiting, "snapshot")
            self.saver.put_snapshot(self.thread_id, snapshot)
        self.step += 1


async def _off_loop(run: _Run, step: Any, *args: Any) -> None:
    """``step(*args)`` (a step that may read or write checkpoints) on the shared pool when the
    saver waits on the network, so the event loop goes on meanwhile; inline otherwise."""
    if run.saver is not None and run.saver.io_bound:
        await run_in_thread(step, *args)
    else:
        step(*args)


def _stored(saver: CheckpointSaver, thread_id: str) -> tuple[Checkpoint | None, list[Checkpoint]]:
    """A thread's checkpoints, and the snapshot they start from when the steps before it were
    pruned (``None`` when the thread starts at step 0)."""
    snapshot, records = saver.snapshot(thread_id), saver.records(thread_id)
    pruned = snapshot is not None and (not records or records[0].step > snapshot.step)
    return (snapshot if pruned else None), records


def _thread_of(checkpointer: CheckpointSaver | None, config: RunConfig | None) -> tuple[CheckpointSaver, str]:
    if checkpointer is None:
        raise GraphError("this graph has no checkpointer; compile(checkpointer=InMemorySaver()) to keep threads")
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if thread_id is None:
        raise GraphError(
            "this graph has a checkpointer, so each call needs a thread: pass "
            "config={'configurable': {'thread_id': '<id>'}}"
        )
    return checkpointer, str(thread_id)


def _modes(stream_mode: str | Sequence[str]) -> tuple[str, ...] | str:
    for mode in [stream_mode] if isinstance(stream_mode, str) else stream_mode:
        if mode not in STREAM_MODES:
            raise GraphError(f"unknown stream_mode {mode!r}; this graph streams {list(STREAM_MODES)}")
    return stream_mode if isinstance(stream_mode, str) else tuple(stream_mode)


def _chunks(modes: tuple[str, ...] | str, run: _Run, writes: Writes) -> Iterator[Any]:
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
