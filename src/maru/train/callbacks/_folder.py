"""Where a callback that writes files puts them: its ``dirpath``, else a folder in the run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import TrainError


def folder_for(owner: str, what: str, dirpath: Path | None, trainer: Any, default: str) -> Path:
    """``dirpath`` when given, else ``run_dir/default``; without either, an error saying so."""
    if dirpath is not None:
        return dirpath
    if trainer.run_dir is None:
        raise TrainError(
            f"{owner} needs a folder for its {what}: pass dirpath=..., or give the Trainer a "
            f"run_dir ({what} then go to run_dir/{default})"
        )
    return Path(trainer.run_dir) / default
