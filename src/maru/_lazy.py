"""Lazy package exports: ``from maru.rag import LocalStore`` imports the module that defines it only
then, so importing a package stays cheap (no torch, numpy or SDK until a name needs it)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def load(package: str, table: Mapping[str, str], name: str) -> Any:
    """The attribute ``name`` of ``package``, imported from the module ``table`` names for it
    (relative, with or without the leading dot) and cached in the package's namespace."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    relative = module if module.startswith(".") else f".{module}"
    value = getattr(importlib.import_module(relative, package), name)
    setattr(sys.modules[package], name, value)
    return value
