"""Learning rate per optimiser step: linear warm-up, then cosine decay, as PySlowFast
(the reference's trainer) computes it at every iteration. A pure function of the step, so
resuming needs only the step count.

With `after_warmup` (FROSTER's configs set COSINE_AFTER_WARMUP: True; our default) the
warm-up rises to `peak` and the cosine runs from there to `end`. Without it (PySlowFast's
own default) the cosine spans the whole run and the warm-up ends on its value.
"""

from __future__ import annotations

import math


def _cosine(step: float, total: float, offset: float, peak: float, end: float) -> float:
    progress = min(1.0, (step - offset) / max(1e-12, total - offset))
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def learning_rate(step: int, total_steps: int, warmup_steps: float, peak: float,
                  warmup_start: float, end: float, after_warmup: bool = False) -> float:
    """LR for optimiser step `step` (0-based) of `total_steps`."""
    offset = warmup_steps if after_warmup else 0.0
    if step < warmup_steps:
        top = _cosine(warmup_steps, total_steps, offset, peak, end)
        return warmup_start + (top - warmup_start) * step / warmup_steps
    return _cosine(step, total_steps, offset, peak, end)


def set_lr(optimizer, lr: float) -> None:
    """Set every group's rate: `lr` times the group's `lr_scale` (1 unless set)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
