"""Imports between maru's packages point one way, as the table below (and docs/architecture.md,
"Layers") says.

Every module under ``src/maru`` is parsed, not imported: all its imports count, function-local and
``TYPE_CHECKING`` ones included, since a back-tie hidden in a function is still a tie. A node is a
package or top-level module right under ``maru`` (``rag``, ``messages``, ``_sqlite``); ``maru``
itself stands for ``maru/__init__.py``. Names the lazy tables (``_LAZY``) load are relative to
their own package, so they never cross packages and are not read here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "maru"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
ROOT = "maru"  # the node of maru/__init__.py

# What each package may import, bottom up. Keep docs/architecture.md ("Layers") the same.
LEAVES = (
    "core", "errors", "messages", "redact", "_version", "_lazy", "_process", "_sqlite", "_mmr", "_kiwi",
    "_home",
)
ALLOWED: dict[str, set[str]] = {
    **{leaf: set() for leaf in LEAVES},
    "usage": {"errors", "messages", "_lazy"},
    "net": {"errors", "_version"},
    "parsers": {"core", "errors", "messages"},
    "cache": {"core", "errors", "messages", "_lazy", "_sqlite", "_kiwi"},
    "models": {"cache", "core", "errors", "messages", "usage"},
    "_native": {"models", "errors"},
    "prompts": {"models", "core", "errors", "messages", "usage", "_mmr"},
    "tracing": {"core", "errors", "redact", "usage", "_sqlite", "_version", "_home"},
    "eval": {"tracing", "models", "core", "errors", "messages"},
    "rag": {
        "eval", "prompts", "models", "parsers", "net", "core", "errors", "messages", "usage",
        "_lazy", "_mmr", "_native", "_process", "_sqlite", "_kiwi", "_home",
    },
    "sql": {"prompts", "models", "core", "errors", "messages"},
    "history": {"rag", "prompts", "models", "core", "errors", "messages", "usage", "_sqlite"},
    "agents": {"rag", "models", "net", "graph", "core", "errors", "messages", "_lazy"},
    "graph": {"core", "errors", "messages", "_sqlite"},
    "mcp": {"agents", "net", "core", "errors", "messages", "redact", "_lazy", "_version"},
    "serve": {"prompts", "models", "parsers", "graph", "core", "errors", "messages", "redact", "_version", "_home"},
    "_logs": {"redact"},
    "train": {"errors", "_lazy", "_process"},
    "launch": {"errors", "_lazy", "_process", "_home"},
    "finetune": {"train", "rag", "errors"},
    ROOT: {"core", "tracing", "_version", "_logs"},
    "demo": {ROOT, "rag", "prompts", "models", "parsers", "cache", "tracing", "train", "messages", "usage"},
    "cli": {
        "demo", "serve", "history", "sql", "rag", "eval", "mcp", "agents", "graph", "models", "tracing", "train", "finetune", "launch", "core",
        "errors", "messages", "usage", "_version", "_home",
    },
}


@dataclass(frozen=True)
class Import:
    importer: str  # module, e.g. maru.prompts.selectors
    imported: str  # module, or package when the name imported from it is not a module
    line: int

    @property
    def edge(self) -> tuple[str, str]:
        return node_of(self.importer), node_of(self.imported)

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def node_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of maru: dotted name -> (file, is a package ``__init__``)."""
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported_names(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:  # ``from .. import _sqlite`` imports the module maru._sqlite
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base


@cache
def maru_imports() -> tuple[Import, ...]:
    """Every import of a maru module by a maru module, wherever in the file it stands."""
    found = []
    for name, (path, is_package) in sorted(modules().items()):
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for imported in _imported_names(node, package):
                if imported == ROOT or imported.startswith(ROOT + "."):
                    found.append(Import(name, imported, node.lineno))
    return tuple(dict.fromkeys(found))  # ``from m import a, b`` is one import of m


def crossing_imports() -> list[Import]:
    return [imp for imp in maru_imports() if imp.edge[0] != imp.edge[1]]


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while (member := stack.pop()) != node:
                component.add(member)
            component.add(node)
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_parser_sees_function_local_and_type_checking_imports() -> None:
    imports = {(imp.importer, imp.imported) for imp in maru_imports()}
    assert ("maru", "maru.tracing") in imports  # inside _tracing_from_env()
    assert ("maru.rag.stores.base", "maru.rag.retrievers.vector") in imports  # under TYPE_CHECKING
    assert ("maru.cache.sqlite", "maru._sqlite") in imports  # ``from .. import _sqlite``


def test_no_package_imports_a_package_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for imp in crossing_imports():
        graph.setdefault(imp.edge[0], set()).add(imp.edge[1])
    problems = []
    for component in _cycles(graph):
        ties = [str(imp) for imp in crossing_imports() if set(imp.edge) <= component]
        problems.append(f"cycle between {sorted(component)}:\n  " + "\n  ".join(ties))
    assert not problems, "\n".join(problems)


def test_every_package_imports_only_what_the_table_allows() -> None:
    unknown = sorted({node_of(name) for name in modules()} - set(ALLOWED))
    assert not unknown, f"packages missing from ALLOWED (and docs/architecture.md, Layers): {unknown}"
    wrong = [str(imp) for imp in crossing_imports() if imp.edge[1] not in ALLOWED[imp.edge[0]]]
    assert not wrong, "imports against the direction table:\n  " + "\n  ".join(wrong)


def test_the_table_itself_points_one_way() -> None:
    assert not _cycles(ALLOWED)
    assert set().union(*ALLOWED.values()) <= set(ALLOWED)


def test_nothing_in_the_library_imports_the_cli() -> None:
    """``maru.cli`` is an entry point (httpx's ``_main``): the library never depends on it."""
    users = [
        str(imp) for imp in maru_imports()
        if imp.edge[1] == "cli" and imp.edge[0] != "cli" and imp.importer != "maru.__main__"
    ]
    assert not users


def test_request_accounting_does_not_import_the_chat_model() -> None:
    """``ChatModel`` calls ``models.accounting``; accounting (and the chunk helpers both use) never
    import ``models.base`` back."""
    back = [
        str(imp) for imp in maru_imports()
        if imp.importer in {"maru.models.accounting", "maru.models.chunks"} and imp.imported == "maru.models.base"
    ]
    assert not back


def _documented_layers() -> dict[str, set[str]]:
    section = ARCHITECTURE.read_text(encoding="utf-8").split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        if line.startswith("- ") and ":" in line:
            left, right = line[2:].split(":", 1)
            for package in re.findall(r"`([\w.]+)`", left):
                table[package] = set(re.findall(r"`([\w.]+)`", right))
    return table


def test_the_architecture_document_shows_the_same_table() -> None:
    assert _documented_layers() == ALLOWED
