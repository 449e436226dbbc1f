"""Every Python snippet of the README runs as written, offline, each in a fresh interpreter in an
empty folder with no endpoint configured: the README promises it. A snippet that cannot (it needs
a network, an API key or a server) says so on its first line, ``# needs: …``, and is skipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NO_ENDPOINT = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL", "MARU_TRACING", "MARU_TRACE_DB", "MARU_HOME")
NEEDS_MARKER = "# needs:"
"""The first line of a snippet that cannot run offline, saying what it needs."""
OPTIONAL = {"LlamaCppChat": "llama_cpp", "maru.rag": "usearch", "import torch": "torch", "maru.sql": "sqlglot"}
"""A snippet using the key needs the module (an extra): outside CI a missing one skips it."""


def readme_snippets() -> list[tuple[str, str]]:
    """(id, code) for each Python block of the README; the id is its section and position."""
    text = README.read_text(encoding="utf-8")
    snippets, heading, counts = [], "top", dict[str, int]()
    for match in re.finditer(r"^#{2,3} ([^\n]+)$|^```python\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).strip()
            continue
        counts[heading] = counts.get(heading, 0) + 1
        snippets.append((f"{heading} #{counts[heading]}", match.group(2)))
    return snippets


SNIPPETS = readme_snippets()


def test_the_readme_promises_its_snippets_run_offline() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "Every Python snippet in this README runs as is, offline" in text
    assert len(SNIPPETS) >= 14


def test_snippets_that_cannot_run_offline_say_what_they_need() -> None:
    for name, code in SNIPPETS:
        statements = "\n".join(line.split("#", 1)[0] for line in code.splitlines())  # not comments
        calls_endpoint = any(f"{client}(" in statements for client in ("OpenAIChat", "OpenAIEmbeddings"))
        if calls_endpoint and not code.lstrip().startswith(NEEDS_MARKER):
            pytest.fail(f"{name} calls an endpoint but does not start with '{NEEDS_MARKER} …'")


@pytest.mark.parametrize(("name", "code"), SNIPPETS, ids=[n for n, _ in SNIPPETS])
def test_snippet_runs_offline_as_written(name: str, code: str, tmp_path: Path) -> None:
    if code.lstrip().startswith(NEEDS_MARKER):
        pytest.skip(code.lstrip().splitlines()[0])
    for key, module in OPTIONAL.items():
        if key in code and not os.environ.get("CI"):
            pytest.importorskip(module)
    env = {k: v for k, v in os.environ.items() if k not in NO_ENDPOINT}
    env["HOME"] = str(tmp_path / "home")  # outside a project maru keeps its stores in ~/.maru
    folder = tmp_path / "fresh"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=240,
    )
    assert proc.returncode == 0, f"{name}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
