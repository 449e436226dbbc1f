"""Stateful graphs: nodes that read one shared state and return updates, joined by edges and
conditional edges, run in supersteps and checkpointed per step.

    from maru.graph import END, START, StateGraph, add_messages

The API follows LangGraph's names (``StateGraph``, ``add_node``, ``add_edge``,
``add_conditional_edges``, ``compile``, ``InMemorySaver``), and a compiled graph is a maru
``Runnable``: invoke, batch, stream and their async forms, traced like any other step.
"""

from .builder import END, START, StateGraph
from .checkpoint import Checkpoint, CheckpointSaver, InMemorySaver, MemorySaver
from .compiled import CompiledGraph, StateSnapshot
from .errors import GraphCheckpointError, GraphError, GraphRecursionError
from .interrupts import Command, GraphInterrupt, Interrupt, idempotency_key, interrupt
from .postgres import PostgresSaver
from .sqlite import SQLiteSaver
from .state import add_messages, merge_dicts

SqliteSaver = SQLiteSaver  # LangGraph's spelling

__all__ = [
    "END",
    "START",
    "Checkpoint",
    "CheckpointSaver",
    "Command",
    "CompiledGraph",
    "GraphCheckpointError",
    "GraphError",
    "GraphInterrupt",
    "GraphRecursionError",
    "InMemorySaver",
    "Interrupt",
    "MemorySaver",
    "PostgresSaver",
    "SQLiteSaver",
    "SqliteSaver",
    "StateGraph",
    "StateSnapshot",
    "add_messages",
    "idempotency_key",
    "interrupt",
    "merge_dicts",
]
