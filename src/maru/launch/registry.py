"""The job registry: every job ``maru launch`` submitted (backend, id, name, spec file, time) in
``jobs.sqlite`` in maru's home folder (:mod:`maru._home`), so ``maru jobs ls`` lists jobs across
backends and ``maru jobs status ID`` knows which backend to ask."""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._home import maru_home
from ..errors import ConfigurationError
from .backend import JobHandle

__all__ = ["JobRegistry", "default_path"]


def default_path() -> Path:
    """Where the registry lives by default: ``jobs.sqlite`` in maru's home folder (``$MARU_HOME``,
    else the project's ``.maru``; see :mod:`maru._home`). ``$MARU_JOBS_DB`` overrides it."""
    return maru_home() / "jobs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    backend TEXT NOT NULL,
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    spec_path TEXT,
    submitted_at REAL NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (backend, job_id)
)
"""


class JobRegistry:
    """Submitted jobs, newest first. One short connection per call: this is bookkeeping for a
    command-line tool, not a hot path."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path or os.environ.get("MARU_JOBS_DB") or default_path())

    @contextmanager
    def _connect(self, create: bool) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.path.exists():
            yield None
            return
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"job registry {self.path} cannot be opened: {exc}") from None
        try:
            conn.execute(_SCHEMA)
            with conn:
                yield conn
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"job registry {self.path} is unusable ({exc}); move it aside to start a new one"
            ) from None
        finally:
            conn.close()

    def add(self, handle: JobHandle) -> None:
        """Record a submitted job (a job id seen again replaces the old record)."""
        with self._connect(create=True) as conn:
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    handle.backend,
                    handle.job_id,
                    handle.name,
                    handle.spec_path,
                    handle.submitted_at,
                    json.dumps(dict(handle.extra)),
                ),
            )

    def list(self, backend: str | None = None, limit: int | None = None) -> list[JobHandle]:
        """Recorded jobs, newest first, optionally of one backend only."""
        query = "SELECT * FROM jobs"
        params: list[object] = []
        if backend:
            query += " WHERE backend = ?"
            params.append(backend)
        query += " ORDER BY submitted_at DESC"
        if limit:
            query += " LIMIT ?"
            params.append(limit)
        with self._connect(create=False) as conn:
            rows = conn.execute(query, params).fetchall() if conn is not None else []
        return [_handle(row) for row in rows]

    def find(self, job_id: str, backend: str | None = None) -> builtins.list[JobHandle]:
        """Jobs whose id (or name) is ``job_id``; an empty list when none is recorded."""
        return [
            h
            for h in self.list(backend=backend)
            if job_id in (h.job_id, h.name) or h.job_id.endswith("/" + job_id)
        ]

    def remove(self, backend: str, job_id: str) -> None:
        with self._connect(create=False) as conn:
            if conn is not None:
                conn.execute("DELETE FROM jobs WHERE backend = ? AND job_id = ?", (backend, job_id))


def _handle(row: tuple[object, ...]) -> JobHandle:
    backend, job_id, name, spec_path, submitted_at, extra = row
    return JobHandle(
        backend=str(backend),
        job_id=str(job_id),
        name=str(name),
        spec_path=None if spec_path is None else str(spec_path),
        submitted_at=float(submitted_at),  # type: ignore[arg-type]
        extra=json.loads(str(extra)),
    )
