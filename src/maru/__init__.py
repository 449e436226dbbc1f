"""maru: build LLM applications and train PyTorch models at scale.

The top level names the runtime; everything else lives in its subpackage (``maru.models``,
``maru.prompts``, ``maru.parsers`` …) and is imported only when used, so ``import maru`` stays fast.
"""

from ._logs import mask_maru_records
from ._version import __version__
from .core import (
    Runnable,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    assign,
    branch,
    listen,
    parallel,
    passthrough,
    pick,
    route,
    runnable,
)

__all__ = [
    "Runnable",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "__version__",
    "assign",
    "branch",
    "listen",
    "parallel",
    "passthrough",
    "pick",
    "route",
    "runnable",
]


def _tracing_from_env() -> None:
    import os

    if os.environ.get("MARU_TRACING"):
        from .tracing import enable_from_env

        enable_from_env()


mask_maru_records()
_tracing_from_env()
