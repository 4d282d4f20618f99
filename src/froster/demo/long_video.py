"""A long video of the demo world: one action after another, with known cut times.

Each part shows one action: scenes of `froster.demo.world` (a shape doing the action),
each performing it once over `clip_seconds` (default: the whole part, one scene), so a
timeline run on the video can be checked against what happens when:

    parts = write_action_video("actions.mp4", ["Moving left", "Growing", "Shaking"])
    # [(0.0, 8.0, 'Moving left'), (8.0, 16.0, 'Growing'), (16.0, 24.0, 'Shaking')]
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..data.synthetic import write_video
from .world import SIGNATURE_PROB, render_frame, sample_scene

__all__ = ["write_action_video"]


def write_action_video(path: str | os.PathLike, actions: Sequence[str], seconds: float = 8.0,
                       fps: int = 8, size: int = 32, seed: int = 0, clip_seconds: float | None = None,
                       signature_prob: float = SIGNATURE_PROB) -> list[tuple[float, float, str]]:
    """Write the actions one after the other, `seconds` each (H.264, lossless 4:4:4);
    returns the parts as (start, end, action) in seconds."""
    per_part = int(round(seconds * fps))
    per_clip = int(round((clip_seconds or seconds) * fps))
    if per_clip < 2 or per_part % per_clip:
        raise ValueError("a scene needs at least two frames, and a part a whole number of scenes")
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng, action, 0.5, signature_prob)
              for action in actions for _ in range(per_part // per_clip)]

    def frame(i: int, width: int, height: int) -> np.ndarray:
        clip, k = divmod(i, per_clip)
        return render_frame(scenes[clip], k / (per_clip - 1), size)

    write_video(path, per_part * len(actions), size, size, fps=fps, pix_fmt="yuv444p",
                options={"qp": "0"}, frame=frame)
    return [(i * per_part / fps, (i + 1) * per_part / fps, action) for i, action in enumerate(actions)]
