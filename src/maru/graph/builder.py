"""``StateGraph``: declare nodes and edges, then ``compile()`` into a runnable.

The shape is LangGraph's, so code written for it reads the same: ``add_node``, ``add_edge``,
``add_conditional_edges``, ``START`` / ``END``, ``compile(checkpointer=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import Lambda, Runnable, coerce
from .errors import GraphError
from .state import Schema

if TYPE_CHECKING:
    from .checkpoint import CheckpointSaver
    from .compiled import CompiledGraph

START = "__start__"
"""Where a run begins: ``add_edge(START, "first")``."""
END = "__end__"
"""Where a run ends: ``add_edge("last", END)``, or a router returning ``END``."""


@dataclass(slots=True)
class Branch:
    """A conditional edge: ``router(state)`` names the next node(s); ``path_map`` translates its
    answer when given."""

    router: Runnable[Any, Any]
    path_map: dict[Hashable, str] | None


@dataclass(slots=True)
class Spec:
    """Everything ``compile`` checked, in the order it was declared (the order of a step's merge)."""

    schema: Schema
    nodes: dict[str, Runnable[Any, Any]]
    edges: dict[str, list[str]] = field(default_factory=dict)
    branches: dict[str, list[Branch]] = field(default_factory=dict)
    joins: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    @property
    def fixed_next(self) -> dict[str, tuple[str, ...]]:
        """For each node whose successors do not depend on the state (plain edges only, no
        conditional edge, no join), those successors: the fast path of a chain."""
        in_joins = {s for sources, _ in self.joins for s in sources}
        return {
            node: tuple(t for t in self.edges.get(node, ()) if t != END)
            for node in self.nodes
            if node not in self.branches and node not in in_joins
        }

    @property
    def rank(self) -> dict[str, int]:
        """Each node's place in declaration order."""
        return {name: i for i, name in enumerate(self.nodes)}

    def order(self, names: set[str]) -> list[str]:
        """``names`` in declaration order, so every step runs and merges the same way."""
        return [n for n in self.nodes if n in names]


class StateGraph:
    """A graph whose nodes read one shared state and return partial updates to it.

    ``state_schema`` is a ``TypedDict`` or a pydantic model (or ``dict`` for any keys). A key
    declared ``Annotated[list, add_messages]`` (or any ``Annotated[T, fn]``) combines updates with
    the function; other keys are replaced."""

    def __init__(self, state_schema: type[Any] = dict) -> None:
        self.schema = Schema(state_schema)
        self._nodes: dict[str, Runnable[Any, Any]] = {}
        self._edges: list[tuple[str, str]] = []
        self._joins: list[tuple[tuple[str, ...], str]] = []
        self._branches: list[tuple[str, Branch]] = []

    # ----------------------------------------------------------------- declaring
    def add_node(self, node: str | Any, action: Any = None) -> StateGraph:
        """``add_node("name", fn_or_runnable)``, or ``add_node(fn)`` named after the function. A
        node gets the state and returns a dict of the keys it changes (or ``None``)."""
        if action is None:
            action, node = node, getattr(node, "__name__", None) or getattr(node, "name", None)
        if not isinstance(node, str) or not node:
            raise GraphError(f"a node needs a name: add_node('name', step), got {node!r}")
        if node in (START, END):
            raise GraphError(f"{node!r} is reserved; name the node something else")
        if node in self._nodes:
            raise GraphError(f"there is already a node {node!r}; node names are unique")
        self._nodes[node] = _as_node(node, action)
        return self

    def add_sequence(self, nodes: Sequence[Any]) -> StateGraph:
        """Add nodes (functions, or ``(name, step)`` pairs) joined one after the other."""
        names = []
        for item in nodes:
            name, action = item if isinstance(item, tuple) else (getattr(item, "__name__", None), item)
            self.add_node(name, action)
            names.append(name)
        for a, b in zip(names, names[1:], strict=False):
            self.add_edge(a, b)
        return self

    def add_edge(self, start: str | Sequence[str], end: str) -> StateGraph:
        """``start`` runs, then ``end``. With a list of starts, ``end`` waits for all of them."""
        if isinstance(start, str):
            self._edges.append((start, end))
        else:
            self._joins.append((tuple(start), end))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any] | Runnable[Any, Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After ``source``, ``path(state)`` says where to go: a node name, ``END``, or a list of
        names (run in parallel). ``path_map`` maps its answers to node names."""
        mapping: dict[Hashable, str] | None = None
        if path_map is not None:
            mapping = dict(path_map) if isinstance(path_map, Mapping) else {n: n for n in path_map}
        self._branches.append((source, Branch(coerce(path), mapping)))
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    # ----------------------------------------------------------------- compiling
    def compile(
        self, checkpointer: CheckpointSaver | None = None, *, name: str | None = None
    ) -> CompiledGraph:
        """Check the graph and return it as a runnable (invoke, stream, batch, async)."""
        from .compiled import CompiledGraph

        return CompiledGraph(self._checked(), checkpointer=checkpointer, name=name)

    def _checked(self) -> Spec:
        spec = Spec(self.schema, dict(self._nodes))
        known = {*self._nodes, START, END}
        for a, b in self._edges:
            _require(a, known - {END}, "an edge starts at")
            _require(b, known - {START}, "an edge goes to")
            spec.edges.setdefault(a, []).append(b)
        for starts, b in self._joins:
            for a in starts:
                _require(a, known - {END, START}, "a joining edge starts at")
            _require(b, known - {START}, "a joining edge goes to")
            spec.joins.append((starts, b))
        for source, branch in self._branches:
            _require(source, known - {END}, "a conditional edge starts at")
            for target in (branch.path_map or {}).values():
                _require(target, known - {START}, "a conditional edge's path_map names")
            spec.branches.setdefault(source, []).append(branch)
        if START not in spec.edges and START not in spec.branches:
            raise GraphError(
                "the graph has no entry point; add add_edge(START, '<first node>') "
                "(or set_entry_point)"
            )
        return spec


def _require(name: str, known: set[str], what: str) -> None:
    if name not in known:
        nodes = sorted(known - {START, END})
        raise GraphError(f"{what} {name!r}, which is not a node of the graph; its nodes are {nodes}")


def _as_node(name: str, action: Any) -> Runnable[Any, Any]:
    """A node's step, named by the node in events and traces: a function step takes the name
    itself; another step (a chain, a model, a subgraph) runs under it as its run name."""
    if isinstance(action, Lambda):
        return Lambda(action.fn, name, io_bound=action.io_bound)
    if _is_plain_callable(action):
        return Lambda(action, name)
    step = coerce(action)
    return step if step.name == name else step.with_config(run_name=name)


def _is_plain_callable(action: Any) -> bool:
    """A function or callable object (not a step, not a dict, not a LangChain runnable)."""
    return (
        callable(action)
        and not isinstance(action, Runnable)
        and not type(action).__module__.startswith("langchain")
    )
