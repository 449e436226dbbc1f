"""Strategies: how the trainer's argument resolves, gradient clipping, and each strategy run under
torchrun on CPU with gloo (DDP, FSDP2, TP, dp × tp) against a single-process reference."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402

torch = pytest.importorskip("torch")

from maru.errors import TrainError  # noqa: E402
from maru.train.dist import DistEnv  # noqa: E402
from maru.train.strategies import (  # noqa: E402
    DDP,
    FSDP,
    TP,
    DPxTP,
    Strategy,
    _require_parallelize,
    clip_grad_norm,
    resolve_strategy,
)
from maru.train.task import Task  # noqa: E402

ONE = DistEnv()
FOUR = DistEnv(rank=0, world_size=4, local_world_size=4)


def test_auto_is_plain_in_one_process_and_ddp_in_many() -> None:
    assert type(resolve_strategy("auto", ONE)) is Strategy
    assert type(resolve_strategy("ddp", ONE)) is Strategy  # one process: nothing to sync
    assert isinstance(resolve_strategy("auto", FOUR), DDP)
    assert isinstance(resolve_strategy("fsdp", FOUR), FSDP)
    assert isinstance(resolve_strategy("tp", FOUR), TP)
    dp_tp = resolve_strategy("dp_tp", FOUR, tp_size=2)
    assert isinstance(dp_tp, DPxTP) and dp_tp.tp_size == 2 and dp_tp.uses_fsdp
    custom = FSDP(reshard_after_forward=False)
    assert resolve_strategy(custom, FOUR) is custom


def test_strategy_errors_say_what_to_do() -> None:
    with pytest.raises(TrainError, match="not one of"):
        resolve_strategy("zero3", FOUR)
    with pytest.raises(TrainError, match="tp_size"):
        resolve_strategy("dp_tp", FOUR)
    with pytest.raises(TrainError, match="use 'ddp'"):
        resolve_strategy("single", FOUR)
    with pytest.raises(TrainError, match="'fsdp' or 'ddp'"):
        DPxTP(2, dp="zero")

    class NoPlan(Task):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            return batch

    with pytest.raises(TrainError, match="parallelize"):
        _require_parallelize(NoPlan())


def test_clip_grad_norm_matches_torch_on_plain_tensors() -> None:
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 4)
    for m in (a, b):
        (m(x) * 10).sum().backward()
    ours = clip_grad_norm(a.parameters(), 0.5)
    theirs = torch.nn.utils.clip_grad_norm_(b.parameters(), 0.5)
    assert torch.allclose(ours, theirs)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)
    assert float(clip_grad_norm([torch.nn.Parameter(torch.ones(2))], 1.0)) == 0.0  # no grads


@pytest.mark.slow
def test_ddp_and_fsdp_agree_and_keep_ranks_equal(tmp_path: Path) -> None:
    runs = {}
    for name in ("ddp", "fsdp"):
        out = tmp_path / name
        tr.check(tr.run_script(out, "--strategy", name, "--steps", "12", "--clip", "1.0"))
        w0, w1 = tr.weights(out, 0), tr.weights(out, 1)
        assert tr.identical(w0, w1), f"{name}: data-parallel ranks diverged"
        losses = tr.summary(out)["losses"]
        assert losses[-1] < losses[0]
        runs[name] = w0
    assert tr.max_diff(runs["ddp"], runs["fsdp"]) < 1e-5


@pytest.mark.slow
def test_tensor_parallel_matches_one_process(tmp_path: Path) -> None:
    single, tp = tmp_path / "single", tmp_path / "tp"
    tr.check(tr.run_script(single, "--steps", "10", nproc=None))
    tr.check(tr.run_script(tp, "--strategy", "tp", "--steps", "10"))
    assert tr.summary(tp)["losses"] == pytest.approx(tr.summary(single)["losses"], rel=1e-4)
    assert tr.max_diff(tr.weights(tp), tr.weights(single)) < 1e-5
    assert tr.identical(tr.weights(tp, 0), tr.weights(tp, 1))


@pytest.mark.slow
def test_dp_by_tp_on_four_processes_matches_ddp(tmp_path: Path) -> None:
    """2 × 2 mesh: TP plan inside each pair, FSDP2 across pairs, with accumulation and clipping."""
    args = ("--steps", "8", "--grad-accum", "2", "--clip", "0.5")
    dp_tp, ddp = tmp_path / "dp_tp", tmp_path / "ddp"
    tr.check(tr.run_script(dp_tp, "--strategy", "dp_tp", "--tp-size", "2", *args, nproc=4))
    tr.check(tr.run_script(ddp, "--strategy", "ddp", *args))
    assert tr.max_diff(tr.weights(dp_tp), tr.weights(ddp)) < 1e-5
    for rank in (1, 2, 3):
        assert tr.identical(tr.weights(dp_tp, 0), tr.weights(dp_tp, rank))
