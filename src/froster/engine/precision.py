"""Mixed precision: which dtype the forward pass runs in and whether a grad scaler is needed.
Training: `auto` is fp16 on CUDA, as the reference trains, and fp32 on CPU. Testing
(evaluation, benchmarks, prediction): fp32 on every device, as the reference tests;
bf16/fp16 are speed options."""

from __future__ import annotations

import contextlib

import torch

from ..errors import FrosterError
from ..precisions import EVAL_PRECISIONS

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str, device: torch.device, key: str = "precision") -> torch.dtype | None:
    """The training autocast dtype (None: plain fp32)."""
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise FrosterError(f"{key}=fp16 is for CUDA; on CPU use bf16 or fp32")
    return _DTYPES[precision]


def eval_autocast_dtype(precision: str, device: torch.device,
                        key: str = "eval_precision") -> torch.dtype | None:
    """The testing autocast dtype (None: plain fp32, the default on CPU and CUDA alike)."""
    if precision not in EVAL_PRECISIONS:
        raise FrosterError(f"{key}={precision!r}: expected one of {', '.join(EVAL_PRECISIONS)}")
    return autocast_dtype(precision, device, key)


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """A GradScaler for fp16 (small gradients underflow otherwise); disabled otherwise."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
