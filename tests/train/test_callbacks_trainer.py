"""The callbacks in real ``fit`` runs: early stop, best-k checkpoints that load, learning rates
and throughput in metrics.csv, a profiler trace — and their state across a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from maru.train import Trainer
from maru.train.callback import Callback
from maru.train.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProfilerCallback,
    ThroughputMonitor,
)
from maru.train.checkpoint import CheckpointManager
from maru.train.loggers import read_metrics

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*TypedStorage.*:UserWarning", "ignore:resumed at step:UserWarning"
)

SCRIPT = Path(__file__).parent / "scripts" / "callbacks_ddp.py"


def _script_module() -> Any:
    """The DDP script's module: its scripted task is the one these tests build on."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("callbacks_ddp_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Scripted(_script_module().Scripted):  # type: ignore[misc]
    """The scripted validation loss (5, 4, 3, then 3 for ever), with two parameter groups, a
    per-step scheduler and a FLOP count."""

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(
            [{"params": [self.net.weight]}, {"params": [self.net.bias], "lr": 0.02}], lr=0.01
        )
        scheduler = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def flops_per_step(self, batch: torch.Tensor) -> float:
        return 6.0 * 4 * batch.shape[0]


def _data() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, generator=generator) for _ in range(8)]


def _trainer(tmp_path: Path, max_steps: int, callbacks: list[Any], log_every: int = 1) -> Trainer:
    return Trainer(
        max_steps=max_steps,
        val_every=1,
        log_every=log_every,
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=1,
        run_dir=tmp_path / "run",
        loggers=["csv"],
        progress=False,
        callbacks=callbacks,
    )


def test_early_stopping_ends_fit_after_patience_checks(tmp_path: Path) -> None:
    stopper = EarlyStopping("val_loss", patience=3)
    result = _trainer(tmp_path, 50, [stopper]).fit(Scripted(), _data(), [torch.zeros(1)])
    assert result.step == 6 and stopper.stopped_step == 6 and stopper.best_score == 3.0


def test_early_stopping_state_survives_a_restart(tmp_path: Path) -> None:
    """Stopped at step 5 (two checks without improvement), resumed: the third comes at step 6.
    Without the saved state the count restarts and the run goes on to step 9."""
    _trainer(tmp_path, 5, [EarlyStopping("val_loss", patience=3)]).fit(
        Scripted(), _data(), [torch.zeros(1)]
    )
    stopper = EarlyStopping("val_loss", patience=3)
    result = _trainer(tmp_path, 50, [stopper]).fit(Scripted(), _data(), [torch.zeros(1)])
    assert result.resumed_from is not None and result.resumed_from.endswith("step_000000005")
    assert result.step == 6 and stopper.wait_count == 3


def test_best_checkpoint_loads_the_weights_of_its_step_and_survives_a_restart(tmp_path: Path) -> None:
    saver = ModelCheckpoint(monitor="val_loss", save_top_k=1, filename="{step}-{val_loss:.1f}")
    weights: dict[int, torch.Tensor] = {}
    task = Scripted()
    _trainer(tmp_path, 5, [saver, _WeightSpy(weights)]).fit(task, _data(), [torch.zeros(1)])
    best = Path(saver.best_model_path)
    assert best.name == "step=3-val_loss=3.0" and saver.best_model_score == 3.0
    fresh = Scripted()
    configured = fresh.configure_optimizers()
    CheckpointManager(best.parent).load(
        best,
        model=fresh,
        optimizers=[configured["optimizer"]],
        schedulers=[configured["lr_scheduler"]["scheduler"]],
    )
    assert torch.equal(fresh.net.weight, weights[3])

    again = ModelCheckpoint(monitor="val_loss", save_top_k=1, filename="{step}-{val_loss:.1f}")
    _trainer(tmp_path, 8, [again]).fit(Scripted(), _data(), [torch.zeros(1)])
    # resumed knowing step 3 is the best: later equal losses are not better, nothing new is kept
    assert again.best_model_path == str(best)
    assert [p.name for p in best.parent.iterdir()] == [best.name]


class _WeightSpy(Callback):
    """The weights after each step."""

    def __init__(self, into: dict[int, torch.Tensor]) -> None:
        self.into = into

    def on_train_batch_end(self, trainer: Any, task: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.into[trainer.global_step] = task.net.weight.detach().clone()


def test_learning_rates_and_throughput_land_in_metrics_csv(tmp_path: Path) -> None:
    callbacks = [LearningRateMonitor(), ThroughputMonitor(peak_flops=1e9)]
    _trainer(tmp_path, 6, callbacks, log_every=2).fit(Scripted(), _data(), [torch.zeros(1)])
    series = read_metrics(tmp_path / "run")
    # StepLR(2, 0.5) after each step: the rate in force after steps 2, 4, 6
    assert series["lr-SGD/pg1"] == [(2, 0.005), (4, 0.0025), (6, 0.00125)]
    assert series["lr-SGD/pg2"] == [(2, 0.01), (4, 0.005), (6, 0.0025)]
    assert [step for step, _ in series["throughput/samples_per_s"]] == [2, 4, 6]
    assert all(value > 0 for _, value in series["throughput/samples_per_s"])
    assert all(0 < value < 1 for _, value in series["throughput/mfu"])


def test_learning_rate_per_epoch_is_the_rate_each_epoch_started_with(tmp_path: Path) -> None:
    class Epochly(Scripted):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)}

    Trainer(
        max_epochs=3, run_dir=tmp_path, loggers=["csv"], progress=False,
        callbacks=[LearningRateMonitor(logging_interval="epoch")],
    ).fit(Epochly(), _data()[:4])  # fmt: skip
    assert read_metrics(tmp_path)["lr-SGD"] == [(4, 0.1), (8, 0.05), (12, 0.025)]


def test_profiler_writes_a_chrome_trace_of_the_window(tmp_path: Path) -> None:
    profiler = ProfilerCallback(start=1, warmup=1, active=2)
    Trainer(max_steps=8, run_dir=tmp_path, loggers=None, progress=False, callbacks=[profiler]).fit(
        Scripted(), _data()
    )
    (trace,) = profiler.trace_paths
    assert trace == tmp_path / "profiler" / "trace_rank0_step4.json"
    events = json.loads(trace.read_text())["traceEvents"]
    assert any("addmm" in str(event.get("name", "")) for event in events)


def _torchrun(script: Path, *args: str) -> list[dict[str, Any]]:
    import os
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(script), *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, done.stdout + done.stderr[-3000:]
    return sorted(lines, key=lambda line: line["rank"])


@pytest.mark.slow
def test_two_ranks_stop_together_keep_one_best_and_resume_past_a_checkpoint_that_does_not_load(
    tmp_path: Path,
) -> None:
    """DDP on gloo: both ranks stop at step 6 with the same best; then a newest checkpoint of another
    model's shapes is skipped on both ranks (they agree) and the run resumes from step 6, where the
    restored patience count stops it after one more validation."""
    first = _torchrun(SCRIPT, str(tmp_path))
    assert [(r["step"], r["stopped"], r["best"]) for r in first] == [(6, 6, "step=3-val_loss=3.0")] * 2
    wrong = torch.nn.Linear(3, 2)
    CheckpointManager(tmp_path / "ckpt").save(20, model=wrong, optimizers=[torch.optim.SGD(wrong.parameters())])
    again = _torchrun(SCRIPT, str(tmp_path))
    assert [(r["resumed_from"], r["step"], r["wait"]) for r in again] == [("step_000000006", 7, 4)] * 2
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step=3-val_loss=3.0"]
