"""ThroughputMeter figures, the peak-FLOPs table and the transformer FLOPs formula."""

from __future__ import annotations

import pytest

from maru.train.metrics import (
    ThroughputMeter,
    peak_flops_for,
    transformer_flops_per_token,
)


@pytest.mark.parametrize(
    ("name", "dtype", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.5),
        ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
        ("NVIDIA H100 PCIe", "bf16", 756.5),
        ("NVIDIA H100 PCIe", "tf32", 378.0),
        ("NVIDIA H200", "fp16", 989.5),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
        ("NVIDIA A100-PCIE-40GB", "tf32", 156.0),
        ("NVIDIA L4", "bf16", 121.0),
        ("NVIDIA A10G", "bf16", 70.0),
        ("NVIDIA A10", "bf16", 125.0),
        ("Tesla V100-SXM2-16GB", "fp16", 125.0),
        ("Tesla V100-PCIE-32GB", "fp32", 14.0),
    ],
)
def test_peak_flops_table_matches_datasheet_dense_figures(name: str, dtype: str, tflops: float) -> None:
    assert peak_flops_for(name, dtype) == pytest.approx(tflops * 1e12)


def test_torch_dtypes_and_precision_strings_are_accepted() -> None:
    import torch

    h100 = "NVIDIA H100 80GB HBM3"
    assert peak_flops_for(h100, torch.bfloat16) == peak_flops_for(h100, "bf16-mixed")
    assert peak_flops_for(h100, torch.float16) == peak_flops_for(h100, "16-mixed")
    expected = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32"
    assert peak_flops_for(h100, torch.float32) == peak_flops_for(h100, expected)


def test_unknown_devices_and_missing_precisions_give_none() -> None:
    assert peak_flops_for("cpu", "bf16") is None
    assert peak_flops_for(None, "bf16") is None
    assert peak_flops_for("Some Future GPU", "bf16") is None
    assert peak_flops_for("Tesla V100-SXM2-16GB", "bf16") is None  # no bf16 tensor cores


def test_unknown_dtype_is_an_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="bf16, fp16, tf32 or fp32"):
        peak_flops_for("NVIDIA L4", "int8")


def test_transformer_flops_per_token_is_6n_plus_attention() -> None:
    # GPT-2 small at T=1024: 6·124M + 12·12·12·64·1024
    assert transformer_flops_per_token(124_000_000, 12, 12, 64, 1024) == pytest.approx(
        6 * 124e6 + 12 * 12 * 12 * 64 * 1024
    )


def test_meter_reports_rates_and_mfu(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 10.5, 11.0, 12.0])
    monkeypatch.setattr("maru.train.metrics.time.perf_counter", lambda: next(clock))
    meter = ThroughputMeter(flops_per_step=1e12, device="NVIDIA A100-SXM4-80GB")
    meter.start_step()
    first = meter.end_step(samples=32, tokens=32 * 128)
    assert first["step_time_s"] == pytest.approx(0.5)
    assert first["samples_per_s"] == pytest.approx(64)
    assert first["tokens_per_s"] == pytest.approx(64 * 128)
    assert first["mfu"] == pytest.approx(1e12 / 0.5 / 312e12)
    meter.start_step()
    second = meter.end_step(samples=32, flops=2e12)
    assert "tokens_per_s" not in second
    assert second["mfu"] == pytest.approx(2e12 / 1.0 / 312e12)
    totals = meter.totals()
    assert totals["steps"] == 2
    assert totals["steps_per_s"] == pytest.approx(2 / 1.5)
    assert totals["tokens_per_s"] == pytest.approx(32 * 128 / 1.5)


def test_meter_leaves_mfu_out_on_cpu_or_without_flops() -> None:
    for meter in (ThroughputMeter(flops_per_step=1e9, device="cpu"), ThroughputMeter(peak_flops=1e12)):
        meter.start_step()
        assert "mfu" not in meter.end_step(samples=4)


def test_explicit_peak_flops_wins() -> None:
    meter = ThroughputMeter(flops_per_step=1.0, device="NVIDIA L4", peak_flops=5.0)
    assert meter.peak_flops == 5.0


def test_end_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start_step"):
        ThroughputMeter().end_step(samples=1)
