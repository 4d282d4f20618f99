"""What a sampling rule returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sampled:
    """Decoded clip frames uint8 (N, H, W, 3) (training: one clip; testing: the views one
    after another), and why the sampler left its usual rule for this video, if it did."""

    frames: torch.Tensor
    fallback: str | None = None
