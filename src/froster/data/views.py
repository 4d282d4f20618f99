"""What the model sees of a video: how many frames, how far apart, how many test views and
crops, by which sampling rule, rotated or not. One `ViewSpec` is shared by the config, the
datasets, the `Recognizer`, the demo and explain, so that `froster predict` sees a video
exactly as evaluation does, and the defaults (the reference's 8 x 16 frames at 30 fps,
3 views x 1 crop) live here alone. This file imports no torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import FrosterError
from .sampling import SAMPLINGS

CROPS = (1, 3)  # one centre crop, or three along the long side


@dataclass(frozen=True)
class ViewSpec:
    num_frames: int = 8             # T: frames per clip
    sampling_rate: int = 16         # r: frames between samples, counted at target_fps
    target_fps: float = 30.0        # F: the frame rate r is counted at
    num_views: int = 3              # V: temporal test views of a video
    num_crops: int = 1              # spatial test crops of a view
    sampling: str = "reference"     # the rule (froster.data.sampling): the reference decoder's frames
    apply_rotation: bool = False    # rotate frames as displayed (the reference ignores rotation)

    def __post_init__(self):
        for key in ("num_frames", "sampling_rate", "num_views"):
            if int(getattr(self, key)) < 1:
                raise FrosterError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not float(self.target_fps) > 0:
            raise FrosterError(f"target_fps must be positive, got {self.target_fps}")
        if self.num_crops not in CROPS:
            raise FrosterError(f"test_crops must be 1 or 3, got {self.num_crops}")
        SAMPLINGS.check(self.sampling)

    def replace(self, **changes) -> "ViewSpec":
        return dataclasses.replace(self, **changes)

    @property
    def clip_seconds(self) -> float:
        """How long one clip lasts: T * r / F (4.27 s by default)."""
        return self.num_frames * self.sampling_rate / self.target_fps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DEFAULT_VIEW = ViewSpec()
