"""Resolve ``module:object`` text into a runnable: what ``maru run``, ``maru serve`` and
``serve("module:object")`` take.

It lives here, below the CLI, so that the library's ``serve`` never imports the command line.
Failures raise :class:`~maru.errors.TargetError` with a hint; the CLI prints both and exits 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import TargetError

if TYPE_CHECKING:
    from ..core import Runnable

__all__ = ["load_object", "load_target"]


def load_target(target: str) -> Runnable[Any, Any]:
    """The runnable ``module:object`` names (``object`` may be dotted); a plain function is
    wrapped with :func:`~maru.core.coerce`."""
    return _as_runnable(load_object(target), target)


def load_object(target: str) -> Any:
    """Whatever ``module:object`` names, as it is (``maru mcp serve`` also takes a list of tools)."""
    module_name, attr_path = _split(target)
    return _attribute(_import(module_name, target), module_name, attr_path)


def _split(target: str) -> tuple[str, str]:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise TargetError(
            f"bad target {target!r}: expected module:object",
            "e.g.  maru run my_app.chains:summarise --input '\"some text\"'",
        )
    return module_name, attr_path


def _import(module_name: str, target: str) -> ModuleType:
    # Like `python -m`, let a module in the current directory be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise TargetError(
                f"cannot import module {module_name!r} (from target {target!r}): {exc}",
                "Check the module path; it must be importable from the current directory or the "
                "installed packages.",
            ) from exc
        raise TargetError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise TargetError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc


def _attribute(module: ModuleType, module_name: str, attr_path: str) -> Any:
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            raise TargetError(
                f"module {module_name!r} has no attribute {attr_path!r}",
                f"It defines: {', '.join(public[:30]) or '(nothing public)'}",
            ) from None
    return obj


def _as_runnable(obj: Any, target: str) -> Runnable[Any, Any]:
    from ..core import Runnable, coerce

    if isinstance(obj, type) and issubclass(obj, Runnable):
        raise TargetError(
            f"{target!r} is the class {obj.__name__}; point at an instance of it (a chain, a model …)"
        )
    if isinstance(obj, Runnable):
        return obj
    if callable(obj):
        return coerce(obj)
    raise TargetError(f"{target!r} is of type {type(obj).__name__}, not a runnable or a callable")
