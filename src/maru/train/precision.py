"""Numeric precision of a training step: ``"32"``, ``"bf16-mixed"``, ``"16-mixed"`` or
``"bf16-true"``.

Mixed precision runs the forward pass under ``torch.autocast`` (weights stay float32) and, for
float16, scales the loss with a ``GradScaler`` so small gradients do not underflow. Under FSDP2 the
cast is FSDP's ``MixedPrecisionPolicy`` instead (parameters gathered in low precision, gradients
reduced in float32), as torchtitan does.

``"bf16-true"`` keeps the parameters themselves in bfloat16 (no float32 master copy: half the
memory of weights, gradients and optimizer state, at the cost of bfloat16's coarse updates).
:meth:`Precision.convert_module` casts the task before the strategy wraps it; float32 inputs are
cast on the way in by autocast (FSDP2: by its policy's ``cast_forward_inputs``).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import TrainError

if TYPE_CHECKING:
    import torch

_NULL_CONTEXT = contextlib.nullcontext()  # reusable: entering it twice in a row is fine
PRECISIONS = ("32", "bf16-mixed", "16-mixed", "bf16-true")
_ALIASES = {"32-true": "32", "fp32": "32", "bf16": "bf16-mixed", "16": "16-mixed", "fp16": "16-mixed"}


def canonical_precision(name: str) -> str:
    """``name`` as one of :data:`PRECISIONS` (aliases such as ``"bf16"`` resolved); a
    :class:`~maru.errors.TrainError` naming the choices when it is none of them."""
    canonical = _ALIASES.get(str(name), str(name))
    if canonical not in PRECISIONS:
        raise TrainError(
            f"precision {canonical!r} is not one of {', '.join(PRECISIONS)}; pass one of these "
            f"(or an alias: {', '.join(_ALIASES)})"
        )
    return canonical


class Precision:
    """What the trainer needs from a precision setting: the forward context and a loss scaler."""

    def __init__(self, name: str, device: torch.device, *, fsdp: bool = False) -> None:
        import torch

        name = canonical_precision(name)
        if name == "16-mixed" and device.type == "cpu":
            warnings.warn(
                "precision='16-mixed' needs a GPU: float16 autocast on CPU is slow and unscaled; "
                "falling back to 'bf16-mixed'",
                stacklevel=3,
            )
            name = "bf16-mixed"
        self.name = name
        self.device_type = device.type
        self.dtype: torch.dtype | None = {
            "bf16-mixed": torch.bfloat16,
            "16-mixed": torch.float16,
            "bf16-true": torch.bfloat16,
        }.get(name)
        self.param_dtype: torch.dtype | None = torch.bfloat16 if name == "bf16-true" else None
        self.fsdp = fsdp
        self.scaler: Any = None
        if name == "16-mixed":
            if fsdp:
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

                self.scaler = ShardedGradScaler()
            else:
                self.scaler = torch.amp.GradScaler(device.type)

    @property
    def uses_autocast(self) -> bool:
        """Autocast is for DDP / single / TP; FSDP2 casts through its policy instead."""
        return self.dtype is not None and not self.fsdp

    def convert_module(self, module: Any) -> None:
        """Cast ``module``'s floating-point parameters and buffers to the parameter dtype
        (``bf16-true``); nothing for the other precisions. Before the strategy wraps it, so DDP
        buckets and FSDP shards are made in that dtype."""
        if self.param_dtype is not None:
            module.to(self.param_dtype)

    def forward_context(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.uses_autocast:
            return torch.autocast(self.device_type, dtype=self.dtype)
        return _NULL_CONTEXT

    def fsdp_policy(self) -> Any:
        """FSDP2's ``MixedPrecisionPolicy`` for this precision (``None`` for float32)."""
        import torch
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.dtype is None:
            return None
        reduce = self.param_dtype or torch.float32  # bf16-true: no float32 anywhere
        return MixedPrecisionPolicy(param_dtype=self.dtype, reduce_dtype=reduce)
