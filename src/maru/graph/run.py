"""One call of a compiled graph on its thread: the state, the nodes due, the step count, and the
checkpoints it reads and writes. The compiled graph drives it (sync or async); this holds the
decisions both drivers share: what runs next, how a step's outputs merge, what a failure, a pause
or an answer saves.
"""

from __future__ import annotations

from typing import Any

from ..core import RunConfig
from .builder import END, START, Branch, Spec
from .checkpoint import Checkpoint, CheckpointSaver, Writes, new_checkpoint
from .errors import GraphError, GraphRecursionError
from .interrupts import INTERRUPT_KEY, Command, GraphInterrupt, Interrupt, Task
from .state import INPUT, SNAPSHOT

DEFAULT_RECURSION_LIMIT = 25
UPDATE = "__update__"
"""The writer of an ``update_state`` not made as a node."""
PENDING = "pending"
"""The source of a checkpoint that holds a failed step's finished nodes, not a whole step."""


class Run:
    """One run's moving parts: the state, the nodes due, the step count and the thread it saves to."""

    saved: list[Checkpoint] | None = None
    """A traced call collects the checkpoints it saves here (a class default: untraced, nothing to set)."""

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
            self.saver, self.thread_id = thread_of(checkpointer, config)
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
        if len(results) == 1 and results[0][0]:  # one node that returned: most supersteps
            return [(tasks[0], results[0][1])]
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
        waiting = {k: list(v) for k, v in self.waiting.items()} if self.waiting else {}
        checkpoint = new_checkpoint(self.step, writes, self.next, waiting, source, extra)
        self.saver.put(self.thread_id, checkpoint)
        if self.saved is not None:
            self.saved.append(checkpoint)
        if source != PENDING:
            self.done_step = self.step
        every = self.saver.snapshot_every
        if every and source != PENDING and (self.step + 1) % every == 0:
            snapshot = new_checkpoint(self.step, [(SNAPSHOT, self.state)], self.next, waiting, "snapshot")
            self.saver.put_snapshot(self.thread_id, snapshot)
        self.step += 1


def stored(saver: CheckpointSaver, thread_id: str) -> tuple[Checkpoint | None, list[Checkpoint]]:
    """A thread's checkpoints, and the snapshot they start from when the steps before it were
    pruned (``None`` when the thread starts at step 0)."""
    snapshot, records = saver.snapshot(thread_id), saver.records(thread_id)
    pruned = snapshot is not None and (not records or records[0].step > snapshot.step)
    return (snapshot if pruned else None), records


def thread_of(checkpointer: CheckpointSaver | None, config: RunConfig | None) -> tuple[CheckpointSaver, str]:
    if checkpointer is None:
        raise GraphError("this graph has no checkpointer; compile(checkpointer=InMemorySaver()) to keep threads")
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if thread_id is None:
        raise GraphError(
            "this graph has a checkpointer, so each call needs a thread: pass "
            "config={'configurable': {'thread_id': '<id>'}}"
        )
    return checkpointer, str(thread_id)
