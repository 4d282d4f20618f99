"""Which frames make a clip, as in PySlowFast (the FROSTER reference).

A clip is ``num_frames`` frames ``sampling_rate`` frames apart at ``target_fps``;
in source frames it spans ``clip_size = sampling_rate * num_frames / target_fps * fps``.
Indices are ``linspace(start, start + clip_size - 1, num_frames)``, clamped to the
video and truncated to integers like the reference's ``.long()``; a video shorter
than the clip repeats frames.
"""

from __future__ import annotations

import math
import random

__all__ = ["clip_size", "clip_indices", "train_clip_indices", "test_view_indices"]


def clip_size(video_fps: float, num_frames: int = 8, sampling_rate: int = 16, target_fps: float = 30) -> float:
    """Length of one clip in source frames."""
    return sampling_rate * num_frames / target_fps * video_fps


def clip_indices(start: float, size: float, num_frames: int, num_video_frames: int) -> list[int]:
    end = start + size - 1
    last = max(num_video_frames - 1, 0)
    step = (end - start) / (num_frames - 1) if num_frames > 1 else 0.0
    # the small epsilon keeps 126.99999... from truncating to 126
    return [int(min(max(start + k * step + 1e-9, 0.0), last)) for k in range(num_frames)]


def train_clip_indices(
    num_video_frames: int,
    video_fps: float,
    num_frames: int = 8,
    sampling_rate: int = 16,
    target_fps: float = 30,
    rng: random.Random | None = None,
) -> list[int]:
    """One clip at a uniformly random start."""
    size = clip_size(video_fps, num_frames, sampling_rate, target_fps)
    delta = max(num_video_frames - size, 0)
    start = (rng or random).uniform(0, delta)
    return clip_indices(start, size, num_frames, num_video_frames)


def test_view_indices(
    num_video_frames: int,
    video_fps: float,
    num_frames: int = 8,
    sampling_rate: int = 16,
    target_fps: float = 30,
    num_views: int = 3,
) -> list[list[int]]:
    """``num_views`` clips spread evenly from the first to the last possible start.

    As the reference's offset sampling (USE_OFFSET_SAMPLING in its configs): starts at
    i * floor(delta / (N - 1)); one view starts at floor(delta / 2). Views of a video
    shorter than a clip all start at 0.
    """
    size = clip_size(video_fps, num_frames, sampling_rate, target_fps)
    delta = max(num_video_frames - size, 0)
    if num_views == 1:
        starts = [math.floor(delta / 2)]
    else:
        starts = [i * math.floor(delta / (num_views - 1)) for i in range(num_views)]
    return [clip_indices(s, size, num_frames, num_video_frames) for s in starts]


test_view_indices.__test__ = False  # a library function, not a test for pytest to collect
