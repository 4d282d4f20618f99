"""``sampling: uniform``: even sampling over the whole clip, by frame number.

The clean option (froster's sampling before ``reference`` became the default): the rule
of PySlowFast's decode-everything path, applied to every file by frame number, whatever
its container. Test views use the offset rule of the FROSTER configs
(USE_OFFSET_SAMPLING), so the last view ends at the last frame.

A clip is ``num_frames`` frames ``sampling_rate`` frames apart at ``target_fps``;
in source frames it spans ``clip_size = sampling_rate * num_frames / target_fps * fps``.
Indices are ``linspace(start, start + clip_size - 1, num_frames)``, clamped to the
video and truncated to integers like the reference's ``.long()``; a video shorter
than the clip repeats frames.
"""

from __future__ import annotations

import math
import random

from ..views import ViewSpec
from .sampled import Sampled

__all__ = ["clip_size", "clip_indices", "train_clip_indices", "test_view_indices",
           "train_clip", "test_views"]


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
    start: float | None = None,
) -> list[int]:
    """One clip at a uniformly random start (or at ``start``, a frame number)."""
    size = clip_size(video_fps, num_frames, sampling_rate, target_fps)
    delta = max(num_video_frames - size, 0)
    if start is None:
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


def train_clip(video, spec: ViewSpec, rng: random.Random, start: float | None = None) -> Sampled:
    """One training clip of an open video (froster.data.decode)."""
    info = video.info()
    indices = train_clip_indices(info.num_frames, info.fps, spec.num_frames, spec.sampling_rate,
                                 spec.target_fps, rng, start)
    return Sampled(video.read(indices))


def test_views(video, spec: ViewSpec) -> Sampled:
    """The test views of an open video, one after another."""
    info = video.info()
    views = test_view_indices(info.num_frames, info.fps, spec.num_frames, spec.sampling_rate,
                              spec.target_fps, spec.num_views)
    return Sampled(video.read([i for view in views for i in view]))


test_view_indices.__test__ = False  # a library function, not a test for pytest to collect
test_views.__test__ = False
