"""Closing the streams a step holds when its own stream is closed.

A ``for``/``async for`` loop inside a generator does not close the iterator it reads when the
generator itself is closed (``close()``/``aclose()``, dropped, or its task cancelled between
chunks); the inner stream then waits for the garbage collector — and a trace that records the
closing as the run's end keeps its frames, and the stream, alive until the tracer lets go. What an
open model stream holds is real: a provider connection and a budget reservation. So every layer that
wraps a stream closes what it wraps on the way out (a no-op when it already ran to its end).
"""

from __future__ import annotations

from typing import Any

__all__ = ["aclose_stream", "close_stream"]


def close_stream(stream: Any) -> None:
    """``stream.close()`` when it has one (generators do; plain iterators need nothing)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


async def aclose_stream(stream: Any) -> None:
    """``await stream.aclose()`` when it has one (async generators do)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
