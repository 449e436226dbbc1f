"""Every snippet of the README's "A short tour" (which says they run as is, offline) runs as
written, each in a fresh interpreter in an empty folder, with no endpoint configured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NO_ENDPOINT = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL", "MARU_TRACING")


def tour_snippets() -> list[tuple[str, str]]:
    """(heading, code) for each Python block between "## A short tour" and the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## A short tour")
    section = text[start : text.index("\n## ", start + 1)]
    assert "runs as is, offline" in " ".join(section.split())  # the promise held to
    snippets, heading = [], ""
    for match in re.finditer(r"^### ([^\n]+)$|^```python\n(.*?)^```", section, re.M | re.S):
        if match.group(1):
            heading = match.group(1)
        else:
            snippets.append((heading, match.group(2)))
    return snippets


SNIPPETS = tour_snippets()


def test_the_tour_has_snippets() -> None:
    assert len(SNIPPETS) >= 8


@pytest.mark.parametrize(("heading", "code"), SNIPPETS, ids=[h for h, _ in SNIPPETS])
def test_snippet_runs_offline_as_written(heading: str, code: str, tmp_path: Path) -> None:
    if "LlamaCppChat" in code and not os.environ.get("CI"):
        pytest.importorskip("llama_cpp")
    env = {k: v for k, v in os.environ.items() if k not in NO_ENDPOINT}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=180,
    )
    assert proc.returncode == 0, f"{heading}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
