"""Throughput and model-FLOPs utilisation (MFU) of a training run.

MFU is the fraction of the accelerator's peak dense FLOP rate that the model's own arithmetic
uses: ``flops_per_step / step_time / peak_flops``. The model FLOPs come from the task
(``flops_per_step``, e.g. from :func:`transformer_flops_per_token`); the peak comes from
:func:`peak_flops_for`, a table of vendor datasheet figures.

The meter only reads ``time.perf_counter``: it never waits for the GPU unless asked
(``sync=True``). CUDA kernels run asynchronously, so one step's wall time on a GPU is only
meaningful when measured across a synchronisation; call ``end_step(..., sync=True)`` at log
boundaries (or ``torch.cuda.synchronize()`` yourself) and read the figures there. Between
log boundaries, averages over many steps are still right because the GPU cannot run ahead of
the host by more than its queue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

TFLOPS = 1e12

# Dense peak TFLOP/s from NVIDIA's datasheets (which print the 2:4-sparsity figure, twice these),
# per precision of the matmul inputs.
# Keys are matched against ``torch.cuda.get_device_name()``, most specific first.
# H200 has the H100 SXM's compute; V100 has no bf16 or tf32 tensor cores (those fall back to
# its fp32 rate for tf32; bf16 is not supported there, so None).
_PEAK_TFLOPS: list[tuple[tuple[str, ...], dict[str, float | None]]] = [
    (("h200",), {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 67.0}),
    (("h100", "pcie"), {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.0}),
    (("h100", "nvl"), {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (("h100",), {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 67.0}),  # SXM (HBM3)
    (("a100",), {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (("l4",), {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    # The A10G (AWS G5) has no public NVIDIA datasheet: the commonly reported figures, lower than
    # the A10's. Pass ``peak_flops=`` to ThroughputMeter to use your own.
    (("a10g",), {"bf16": 70.0, "fp16": 70.0, "tf32": 35.0, "fp32": 31.2}),
    (("a10",), {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    (("v100", "pcie"), {"bf16": None, "fp16": 112.0, "tf32": 14.0, "fp32": 14.0}),
    (("v100",), {"bf16": None, "fp16": 125.0, "tf32": 15.7, "fp32": 15.7}),  # SXM2
]

_DTYPE_NAMES = {
    "bf16": "bf16",
    "bfloat16": "bf16",
    "bf16-mixed": "bf16",
    "bf16-true": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "16-mixed": "fp16",
    "tf32": "tf32",
    "fp32": "fp32",
    "float32": "fp32",
    "32": "fp32",
}


def _dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` / ``"bf16-mixed"`` / ``"tf32"`` … → one of bf16, fp16, tf32, fp32.

    ``torch.float32`` counts as tf32 when PyTorch is allowed to use TF32 for matmuls, since
    that is the rate the tensor cores then run at."""
    text = str(dtype).removeprefix("torch.").lower()
    if text not in _DTYPE_NAMES:
        raise ValueError(f"unknown dtype {dtype!r}: use bf16, fp16, tf32 or fp32 (or a torch dtype)")
    name = _DTYPE_NAMES[text]
    if name == "fp32" and not isinstance(dtype, str):
        import torch

        if torch.backends.cuda.matmul.allow_tf32:
            return "tf32"
    return name


def _device_name(device: Any) -> str | None:
    """The GPU's marketing name, or None for a device with no table entry (CPU, MPS)."""
    if device is None:
        return None
    if isinstance(device, int):
        device = f"cuda:{device}"
    text = str(device)
    if text == "cuda" or text.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            return None
        return str(torch.cuda.get_device_name(torch.device(text)))
    if text in ("cpu", "mps", "meta") or text.startswith(("cpu:", "mps:")):
        return None
    return text  # already a name, e.g. "NVIDIA H100 80GB HBM3"


def peak_flops_for(device: torch.device | str | int | None, dtype: Any = "bf16") -> float | None:
    """Peak dense FLOP/s of ``device`` for matmuls in ``dtype``; None when unknown (CPU, an
    unlisted GPU, a precision the GPU lacks), in which case MFU is not reported.

    ``device`` is a torch device (``"cuda:0"``), a CUDA index, or a GPU name as
    ``torch.cuda.get_device_name`` spells it. ``dtype`` is a torch dtype or bf16/fp16/tf32/fp32.
    """
    name = _device_name(device)
    if name is None:
        return None
    lowered = name.lower()
    precision = _dtype_name(dtype)
    for keys, table in _PEAK_TFLOPS:
        if all(_has_word(lowered, key) for key in keys):
            value = table[precision]
            return None if value is None else value * TFLOPS
    return None


def _has_word(name: str, key: str) -> bool:
    """``key`` appears in ``name`` as a token start, so "a10" does not match "a100"."""
    start = name.find(key)
    while start != -1:
        end = start + len(key)
        if end == len(name) or not name[end].isdigit():
            return True
        start = name.find(key, start + 1)
    return False


def transformer_flops_per_token(
    n_params: int, n_layers: int, n_heads: int, head_dim: int, seq_len: int
) -> float:
    """Training FLOPs per token of a decoder-only transformer: ``6N + 12·L·H·Q·T``.

    6N is the forward (2N) and backward (4N) matmuls through every weight; the second term is
    the attention scores and weighted sum (QKᵀ and AV), which have no weights (PaLM paper,
    appendix B). Pass ``n_params`` without the position embeddings, which cost no matmul."""
    return 6.0 * n_params + 12.0 * n_layers * n_heads * head_dim * seq_len


class ThroughputMeter:
    """Step time, samples/s, tokens/s and MFU, measured between ``start_step`` and ``end_step``.

    ``flops_per_step`` is the model's FLOPs for one optimizer step on this process (or pass
    ``flops=`` to ``end_step`` when it varies). ``peak_flops`` defaults to
    ``peak_flops_for(device, dtype)``; without either, ``mfu`` is left out.
    """

    def __init__(
        self,
        flops_per_step: float | None = None,
        device: torch.device | str | int | None = None,
        peak_flops: float | None = None,
        *,
        dtype: Any = "bf16",
    ) -> None:
        self.flops_per_step = flops_per_step
        self.device = device
        self.peak_flops = peak_flops if peak_flops is not None else peak_flops_for(device, dtype)
        self._started: float | None = None
        self.steps = 0
        self.samples = 0
        self.tokens = 0
        self.elapsed_s = 0.0

    def _sync(self) -> None:
        if self.device is not None and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def start_step(self, *, sync: bool = False) -> None:
        """Start the clock for one step (``sync=True`` first waits for queued GPU work)."""
        if sync:
            self._sync()
        self._started = time.perf_counter()

    def end_step(
        self,
        samples: int,
        tokens: int | None = None,
        *,
        flops: float | None = None,
        sync: bool = False,
    ) -> dict[str, float]:
        """Stop the clock; return ``step_time_s``, ``samples_per_s`` and, when known,
        ``tokens_per_s`` and ``mfu`` (a fraction, 0–1) for this step."""
        if sync:
            self._sync()
        now = time.perf_counter()
        if self._started is None:
            raise RuntimeError("ThroughputMeter.end_step called before start_step")
        step_time = max(now - self._started, 1e-12)
        self._started = None
        self.steps += 1
        self.samples += samples
        self.tokens += tokens or 0
        self.elapsed_s += step_time
        figures = {"step_time_s": step_time, "samples_per_s": samples / step_time}
        if tokens is not None:
            figures["tokens_per_s"] = tokens / step_time
        step_flops = flops if flops is not None else self.flops_per_step
        if step_flops is not None and self.peak_flops:
            figures["mfu"] = step_flops / step_time / self.peak_flops
        return figures

    def totals(self) -> dict[str, float]:
        """Averages over every step measured so far."""
        elapsed = max(self.elapsed_s, 1e-12)
        figures = {
            "steps": float(self.steps),
            "steps_per_s": self.steps / elapsed,
            "samples_per_s": self.samples / elapsed,
        }
        if self.tokens:
            figures["tokens_per_s"] = self.tokens / elapsed
        return figures
