"""Where maru keeps what it records between runs: traces, the job registry and local job folders,
chat sessions. One folder, found the same way from any sub-folder of a project, so ``maru trace
ls`` or ``maru jobs ls`` run in ``src/`` see what a run at the project's top wrote:

1. ``$MARU_HOME``, when set;
2. else the ``.maru`` folder of the project the current folder is in: the nearest folder, from
   the current one upward, that holds a ``.maru`` folder, a ``pyproject.toml`` or a ``.git``;
3. else ``~/.maru``, per user, outside any project.

Each store still takes its own path (``MARU_TRACE_DB``, ``MARU_JOBS_DB``, ``--history`` …); this
is only where they go by default. It is worked out at each use, not at import, because the
current folder and the environment can change in between.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "PROJECT_MARKERS", "maru_home", "project_root"]

HOME_ENV = "MARU_HOME"
PROJECT_MARKERS = (".maru", "pyproject.toml", ".git")
"""What makes a folder a project's top: the first one found upward from the current folder."""


def maru_home() -> Path:
    """The folder maru's stores go in by default (see the module docstring); not created here."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    root = project_root(Path.cwd())
    return (root if root is not None else Path.home()) / ".maru"


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds one of :data:`PROJECT_MARKERS`."""
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return None
