"""What a sampler is asked for (ClipSpec) and what it returns (Sampled)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClipSpec:
    """A clip is ``num_frames`` frames ``sampling_rate`` frames apart at ``target_fps``;
    testing takes ``num_views`` clips of a video."""

    num_frames: int = 8
    sampling_rate: int = 16
    target_fps: float = 30.0
    num_views: int = 3


@dataclass
class Sampled:
    """Decoded clip frames uint8 (N, H, W, 3) (training: one clip; testing: the views one
    after another), and why the sampler left its usual rule for this video, if it did."""

    frames: torch.Tensor
    fallback: str | None = None
