"""Launching training jobs: one :class:`JobSpec` (TOML or YAML) runs locally under torchrun, on
Slurm (sbatch) or on Kubernetes (Kubeflow PyTorchJob or JobSet, queued by Kueue).

Names are imported lazily so ``import maru.launch`` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _lazy

if TYPE_CHECKING:
    from .backend import Backend, JobHandle, JobStatus, get_backend
    from .registry import JobRegistry
    from .spec import JobSpec, load_spec, parse_spec

__all__ = [
    "Backend",
    "JobHandle",
    "JobRegistry",
    "JobSpec",
    "JobStatus",
    "get_backend",
    "load_spec",
    "parse_spec",
]

_WHERE = {
    "Backend": "backend",
    "JobHandle": "backend",
    "JobStatus": "backend",
    "get_backend": "backend",
    "JobRegistry": "registry",
    "JobSpec": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
}


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _WHERE, name)


def __dir__() -> list[str]:
    return sorted(__all__)
