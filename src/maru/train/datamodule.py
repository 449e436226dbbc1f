"""``DataModule``: the data of a run in one object, as Lightning's ``LightningDataModule``.

Optional: ``fit`` / ``validate`` / ``test`` / ``predict`` take plain iterables too. A data module
says how to get the data once (``prepare_data``: download or write files, on one process per
machine), how to build it on every process (``setup(stage)``) and hands out the loaders.
"""

from __future__ import annotations

from typing import Any

from ..errors import TrainError

STAGE_LOADERS = {
    "fit": "train_dataloader",
    "validate": "val_dataloader",
    "test": "test_dataloader",
    "predict": "predict_dataloader",
}


class DataModule:
    """Subclass and override the loaders your stages need; the rest say they are missing."""

    def prepare_data(self) -> None:
        """Once per machine (local rank 0), before ``setup``: fetch or write files. Keep no state
        here — the other processes do not run it."""

    def setup(self, stage: str) -> None:
        """On every process, before the stage (``"fit"``, ``"validate"``, ``"test"``,
        ``"predict"``) reads its loaders."""

    def teardown(self, stage: str) -> None:
        """On every process, after the stage."""

    def train_dataloader(self) -> Any:
        raise TrainError(f"{type(self).__name__} has no train_dataloader()")

    def val_dataloader(self) -> Any:
        raise TrainError(f"{type(self).__name__} has no val_dataloader()")

    def test_dataloader(self) -> Any:
        raise TrainError(f"{type(self).__name__} has no test_dataloader()")

    def predict_dataloader(self) -> Any:
        raise TrainError(f"{type(self).__name__} has no predict_dataloader()")

    def state_dict(self) -> dict[str, Any]:
        """What to save in a checkpoint (empty: nothing)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take back what ``state_dict`` returned, on resume."""


def is_data_module(value: Any) -> bool:
    """A :class:`DataModule`, or anything shaped like one (a ``LightningDataModule``)."""
    return isinstance(value, DataModule) or (
        hasattr(value, "train_dataloader") and hasattr(value, "setup") and not hasattr(value, "__iter__")
    )


def overrides(source: Any, loader: str) -> bool:
    """Whether ``source`` (a data module or a task) really provides ``loader``."""
    method = getattr(type(source), loader, None)
    return method is not None and method is not getattr(DataModule, loader, None)
