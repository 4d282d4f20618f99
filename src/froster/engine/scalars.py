"""A training step's scalars (loss terms, gradient norm, skipped steps) summed on the
device and read only at log steps: reading a GPU tensor on the host waits for the GPU,
so the step itself never does."""

from __future__ import annotations

import math

import torch

from .distributed import mean_over_ranks


class StepSums:
    """Per-key sums over an epoch's steps; device tensors stay on the device (float64, so
    the sums equal what adding Python floats gave), Python floats (the learning rate) add
    as floats."""

    def __init__(self):
        self.sums: dict = {}

    def add(self, scalars: dict) -> None:
        for key, value in scalars.items():
            self.sums[key] = value if key not in self.sums else self.sums[key] + value

    def means(self, steps: int, device: torch.device) -> dict[str, float]:
        """Epoch means over the ranks, read in one transfer; `grad_norm` over the steps the
        fp16 scaler did not skip, and `skipped_steps` counted (when there is a scaler)."""
        sums = dict(self.sums)
        skipped = sums.pop("skipped", None)
        values = {k: v / steps for k, v in sums.items()}
        if skipped is not None:
            values["skipped_steps"] = skipped * 1.0
            if "grad_norm" in sums:  # the mean of the finite norms
                values["grad_norm"] = sums["grad_norm"] / torch.clamp(steps - skipped, min=1)
        means = mean_over_ranks(values, device)
        if "skipped_steps" in means:  # a count, not a mean: the same on every rank
            means["skipped_steps"] = int(round(means["skipped_steps"]))
        return means


def step_record(values: dict[str, float]) -> dict:
    """One step's scalars as logged: a skipped step has no gradient norm (null, not the
    non-standard Infinity), and says so."""
    record = dict(values)
    skipped = bool(record.pop("skipped", 0))
    if skipped:
        record["grad_norm"] = None
        record["skipped"] = True
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()}
