"""Serving any runnable over HTTP: ``create_app`` (FastAPI) and ``serve`` (uvicorn).

FastAPI and uvicorn are imported when these are first used (``pip install "maru[serve]"``);
``import maru`` never loads them. ``infer_types`` (pydantic) is imported when first used too, so
that ``maru.serve.target`` (``maru run``'s target loader) stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import redact

if TYPE_CHECKING:
    from .app import create_app
    from .schema import infer_types
    from .server import serve

__all__ = ["create_app", "infer_types", "redact", "serve"]


def __getattr__(name: str) -> Any:
    if name == "infer_types":
        from .schema import infer_types

        return infer_types
    if name in ("create_app", "serve"):
        found: Callable[..., Any]
        try:
            if name == "create_app":
                from .app import create_app as found
            else:
                from .server import serve as found
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"maru.serve.{name} needs FastAPI and uvicorn ({exc}); install them with: "
                'pip install "maru[serve]"'
            ) from exc
        return found
    raise AttributeError(f"module 'maru.serve' has no attribute {name!r}")
