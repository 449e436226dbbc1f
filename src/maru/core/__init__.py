"""The runtime: steps, composition, config, events and the shared executor."""

from .chunks import Snapshot, SnapshotDict, SnapshotList, add_chunks, as_snapshot
from .compose import (
    Assign,
    Branch,
    Parallel,
    Passthrough,
    Pick,
    Sequence,
    assign,
    branch,
    parallel,
    passthrough,
    pick,
    route,
)
from .config import RunConfig
from .events import RunEvent, listen
from .runnable import Lambda, Runnable, coerce, runnable
from .wrappers import Binding, Fallbacks, Retry

# LangChain-familiar names, for migrants.
RunnableLambda = Lambda
RunnableParallel = Parallel
RunnablePassthrough = Passthrough
RunnableSequence = Sequence

__all__ = [
    "Assign",
    "Binding",
    "Branch",
    "Fallbacks",
    "Lambda",
    "Parallel",
    "Passthrough",
    "Pick",
    "Retry",
    "RunConfig",
    "RunEvent",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "Runnable",
    "Sequence",
    "Snapshot",
    "SnapshotDict",
    "SnapshotList",
    "add_chunks",
    "as_snapshot",
    "assign",
    "branch",
    "coerce",
    "listen",
    "parallel",
    "passthrough",
    "pick",
    "route",
    "runnable",
]
