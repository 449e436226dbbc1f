"""Scale switches on a tiny block model: activation checkpointing (same gradients, also under
FSDP2 on two gloo processes), ``compile`` (checkpoint keys without ``_orig_mod.``, checkpoints
interchangeable with uncompiled runs) and ``precision="bf16-true"`` (bfloat16 parameters)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402

from maru.errors import TrainError  # noqa: E402
from maru.train import ShardedDataset, Task, TensorSource, Trainer  # noqa: E402
from maru.train.scale import apply_checkpointing  # noqa: E402

QUIET: dict[str, Any] = {"loggers": None, "progress": False, "log_every": 1}
EAGER = {"backend": "eager"}  # compiles through dynamo without inductor's minutes on 2 cores


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.lin(x))


class Stack(Task):
    """Blocks in a ModuleList (the default fsdp_units) between an input and an output layer."""

    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(8, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.out(h).squeeze(-1)

    def training_step(self, batch):  # type: ignore[no-untyped-def]
        x, y = batch
        return nn.functional.mse_loss(self(x).float(), y.float())

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


def data(n: int = 64) -> ShardedDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    return ShardedDataset(TensorSource((x, x.sum(-1))), batch_size=8)


def fit(steps: int, **settings: Any) -> tuple[Stack, Any]:
    task = Stack()
    result = Trainer(max_steps=steps, **QUIET, **settings).fit(task, data())
    return task, result


def weights(task: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in task.state_dict().items()}


def test_settings_that_select_nothing_say_what_to_pass() -> None:
    with pytest.raises(TrainError, match="compile must be True/False or a dict"):
        Trainer(max_steps=1, compile="yes")  # type: ignore[arg-type]
    with pytest.raises(TrainError, match="activation_checkpointing must be"):
        Trainer(max_steps=1, activation_checkpointing=3)  # type: ignore[arg-type]
    with pytest.raises(TrainError, match="selects no submodule"):
        apply_checkpointing(Stack(), nn.Conv2d)


def test_activation_checkpointing_keeps_gradients_and_keys() -> None:
    torch.manual_seed(0)
    plain, checkpointed = Stack(), Stack()
    checkpointed.load_state_dict(plain.state_dict())
    assert apply_checkpointing(checkpointed, Block) == 3
    assert apply_checkpointing(checkpointed, Block) == 0  # twice: no double wrapping
    assert "CheckpointWrapper" in type(checkpointed.blocks[0]).__name__
    assert checkpointed.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(4, 8)
    for task in (plain, checkpointed):
        task.training_step((x, x.sum(-1))).backward()
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        assert torch.equal(p.grad, q.grad), name


@pytest.mark.parametrize("spec", [Block, True, lambda m: isinstance(m, Block)])
def test_trainer_with_activation_checkpointing_trains_alike(spec: Any) -> None:
    plain, _ = fit(4)
    checkpointed, _ = fit(4, activation_checkpointing=spec)
    assert any("CheckpointWrapper" in type(m).__name__ for m in checkpointed.modules())
    for name, value in weights(plain).items():
        assert torch.equal(value, weights(checkpointed)[name]), name


def test_compile_keeps_checkpoint_keys_and_trains_alike() -> None:
    plain, _ = fit(4)
    compiled, _ = fit(4, compile=EAGER)
    assert all(getattr(block, "_maru_compiled", False) for block in compiled.blocks)
    keys = list(compiled.state_dict())
    assert keys == list(plain.state_dict()) and not any("_orig_mod" in k for k in keys)
    for name, value in weights(plain).items():
        assert torch.allclose(value, weights(compiled)[name], atol=1e-6), name


@pytest.mark.parametrize(("first", "then"), [(EAGER, False), (False, EAGER)])
def test_checkpoints_move_between_compiled_and_plain_runs(tmp_path: Path, first: Any, then: Any) -> None:
    unbroken, _ = fit(6)
    saving = {"checkpoint_dir": tmp_path, "checkpoint_every": 3}
    fit(3, compile=first, **saving)
    resumed, result = fit(6, compile=then, **saving)
    assert result.resumed_from is not None and Path(result.resumed_from).name == "step_000000003"
    for name, value in weights(unbroken).items():
        assert torch.allclose(value, weights(resumed)[name], atol=1e-6), name


@pytest.mark.slow
def test_compile_with_inductor_matches_eager() -> None:
    plain, first = fit(3)
    compiled, second = fit(3, compile=True)
    assert second.loss == pytest.approx(first.loss, rel=1e-4)
    for name, value in weights(plain).items():
        assert torch.allclose(value, weights(compiled)[name], atol=1e-5), name


def test_bf16_true_keeps_parameters_in_bfloat16() -> None:
    task, result = fit(3, precision="bf16-true")
    assert {p.dtype for p in task.parameters()} == {torch.bfloat16}
    assert result.step == 3 and result.loss is not None and result.loss == result.loss  # not NaN
    plain, _ = fit(3)
    assert {p.dtype for p in plain.parameters()} == {torch.float32}


@pytest.mark.slow
def test_activation_checkpointing_under_fsdp_matches_plain_fsdp(tmp_path: Path) -> None:
    variants = {"plain": ["--strategy", "fsdp"], "checkpointed": ["--strategy", "fsdp", "--checkpointing"]}
    runs = tr.rank0_weights_of_variants(tmp_path, "scale_run.py", variants)
    assert tr.summary(tmp_path / "checkpointed")["wrapped"] == 3
    assert tr.max_diff(runs["plain"], runs["checkpointed"]) < 1e-6
