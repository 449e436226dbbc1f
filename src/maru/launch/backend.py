"""The launch backend interface: render a job spec (what ``--dry-run`` prints), submit it, follow
it (status, logs) and cancel it. Each scheduler (local torchrun, Slurm, Kubernetes) implements
:class:`Backend`; :func:`get_backend` imports only the one asked for.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from ..errors import ConfigurationError, LaunchError

if TYPE_CHECKING:
    from .registry import JobRegistry
    from .spec import JobSpec

__all__ = [
    "BACKENDS",
    "Backend",
    "JobHandle",
    "JobState",
    "JobStatus",
    "LaunchError",
    "get_backend",
]

JobState = Literal["pending", "running", "succeeded", "failed", "cancelled", "unknown"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
FINISHED_STATES = frozenset({"succeeded", "failed", "cancelled"})


# LaunchError lives in maru.errors with every other error; re-exported here for convenience.


@dataclass(frozen=True)
class JobHandle:
    """A submitted job: which backend holds it and the id that backend knows it by.
    ``extra`` carries backend details worth keeping (namespace, kind, log folder, pid)."""

    backend: str
    job_id: str
    name: str
    spec_path: str | None = None
    submitted_at: float = field(default_factory=time.time)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands. ``detail`` is the scheduler's own words (a condition, a reason);
    ``restarts`` counts restarts the scheduler reports."""

    job_id: str
    state: JobState
    detail: str = ""
    restarts: int = 0
    name: str | None = None
    backend: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class Backend(ABC):
    """One scheduler. Subclasses set :attr:`name` and implement the five abstract methods.

    ``list()`` defaults to the statuses of the jobs this backend submitted, as recorded in the
    job registry; backends that can ask their scheduler directly override it."""

    name: ClassVar[str]

    @abstractmethod
    def render(self, spec: JobSpec) -> str:
        """What would be submitted, as text: YAML manifests, an sbatch script, a command line."""

    @abstractmethod
    def submit(self, spec: JobSpec) -> JobHandle:
        """Start the job and return its handle (the caller records it in the registry)."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """The job's current state."""

    @abstractmethod
    def logs(self, job_id: str, *, follow: bool = False, rank: int | None = None) -> Iterator[str]:
        """The job's output as lines (without newlines); ``rank`` picks one node (pod, Slurm
        node, local rank); ``follow`` keeps yielding until the job ends."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stop the job (and delete its scheduler object where that is how one stops it)."""

    def list(self, registry: JobRegistry | None = None) -> list[JobStatus]:
        """Statuses of the jobs this backend submitted (from ``registry``, default the project's)."""
        from .registry import JobRegistry

        records = (registry or JobRegistry()).list(backend=self.name)
        return [self.status(record.job_id) for record in records]


BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("maru.launch.local", "LocalBackend"),
    "slurm": ("maru.launch.slurm", "SlurmBackend"),
    "kubernetes": ("maru.launch.kubernetes", "KubernetesBackend"),
}
"""Backend name -> (module, class), imported only when asked for."""


def get_backend(name: str, **options: Any) -> Backend:
    """The backend called ``name`` (``local``, ``slurm``, ``kubernetes``), built with ``options``."""
    key = name.strip().lower()
    if key == "k8s":
        key = "kubernetes"
    if key not in BACKENDS:
        raise ConfigurationError(
            f"unknown launch backend {name!r}: choose one of {', '.join(sorted(BACKENDS))}"
        )
    module_name, class_name = BACKENDS[key]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigurationError(
                f"the {key} launch backend is not available in this installation "
                f"({module_name} is missing)"
            ) from None
        raise ConfigurationError(
            f"the {key} launch backend needs the package {exc.name!r}: "
            f"install it with  pip install \"maru[launch]\"  (or pip install {exc.name})"
        ) from None
    backend_class = getattr(module, class_name, None)
    if backend_class is None:
        raise ConfigurationError(f"{module_name} does not define {class_name}")
    backend: Backend = backend_class(**options)
    return backend
