"""TrainerConfig: one frozen value, checked once, with every problem in one message; the Trainer
takes it or the same keywords."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from maru.errors import TrainError
from maru.train import Trainer, TrainerConfig
from maru.train.config import TrainerSettings


def test_the_trainer_keywords_are_the_config_fields() -> None:
    fields = [f.name for f in dataclasses.fields(TrainerConfig)]
    assert fields == list(TrainerSettings.__annotations__)
    types = {f.name: str(f.type) for f in dataclasses.fields(TrainerConfig)}
    settings = {
        name: getattr(hint, "__forward_arg__", hint)
        for name, hint in TrainerSettings.__annotations__.items()
    }
    assert types == settings


def test_keywords_and_config_build_the_same_trainer() -> None:
    by_keywords = Trainer(max_steps=5, grad_accum=2, precision="bf16", loggers=None)
    by_config = Trainer(config=TrainerConfig(max_steps=5, grad_accum=2, precision="bf16", loggers=None))
    assert by_keywords.config == by_config.config
    assert by_keywords.step == 0 and by_keywords.epoch == 0


def test_keywords_beside_a_config_replace_its_values() -> None:
    base = TrainerConfig(max_steps=5, log_every=2)
    trainer = Trainer(config=base, max_steps=9)
    assert trainer.config == dataclasses.replace(base, max_steps=9)
    with pytest.raises(TrainError, match="grad_accum"):
        Trainer(config=base, grad_accum=0)
    with pytest.raises(TrainError, match="must be a maru.train.TrainerConfig"):
        Trainer(config={"max_steps": 5})  # type: ignore[arg-type]


def test_config_is_frozen_and_paths_become_paths(tmp_path: Path) -> None:
    config = TrainerConfig(max_steps=1, checkpoint_dir=str(tmp_path), run_dir=str(tmp_path / "r"))
    assert config.checkpoint_dir == tmp_path and config.run_dir == tmp_path / "r"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_steps = 2  # type: ignore[misc]


def test_checkpoint_dir_from_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARU_CHECKPOINT_DIR", str(tmp_path))
    config = TrainerConfig(max_steps=1, checkpoint_every=5)
    assert config.checkpoint_dir == tmp_path


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(TrainError) as info:
        TrainerConfig(
            max_steps=0,
            grad_accum=0,
            precision="8-bit",
            strategy="zero3",
            clip_grad_norm=-1.0,
            hang_timeout_s=-5,
            checkpoint_every=3,
        )
    message = str(info.value)
    assert message.startswith("the Trainer settings have 7 problems:")
    for part in (
        "max_steps must be a positive integer, not 0",
        "grad_accum must be a positive integer, not 0",
        "precision '8-bit' is not one of 32, bf16-mixed, 16-mixed",
        "strategy 'zero3' is not one of",
        "clip_grad_norm must be a positive number",
        "hang_timeout_s must be a number of seconds >= 0",
        "checkpoint_every needs checkpoint_dir",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "max_steps or max_epochs"),
        ({"max_steps": 1, "log_every": 2.5}, "log_every must be a positive integer"),
        ({"max_steps": 1, "keep_last": 0}, "keep_last"),
        ({"max_steps": 1, "tp_size": -1}, "tp_size"),
        ({"max_steps": 1, "strategy": "dp_tp"}, "needs tp_size"),
        ({"max_steps": 1, "seed": "7"}, "seed must be an integer"),
    ],
)
def test_one_problem_is_its_own_message(settings: dict[str, object], expected: str) -> None:
    with pytest.raises(TrainError, match=expected) as info:
        TrainerConfig(**settings)  # type: ignore[arg-type]
    assert "problems" not in str(info.value)


def test_accepted_edge_values() -> None:
    config = TrainerConfig(
        max_epochs=1, clip_grad_norm=float("inf"), hang_timeout_s=0, precision="fp16", strategy="dp_tp", tp_size=2
    )
    assert config.max_steps is None and config.precision == "fp16"
